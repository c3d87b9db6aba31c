"""Notebook 03 (cross-attention): the shape of the attention weights inside the U-Net."""

from __future__ import annotations

from . import as_shape, unanswered, verdict

# The question: a batch of 8 EEG signals (8, 17, 100) through unet.UNet1D(17, cond_dim=128,
# channel_mults=(1, 2, 2)) (num_heads=4, the default), conditioned on tokens of shape (8, 65, 128).
# Level 1 ("down1") runs at 100 / 2 = 50 time steps; the weights are (batch, heads, queries, keys).
EXPECTED = (8, 4, 50, 65)


def check_attention_shape(answer) -> bool:
    """Shape of the cross-attention weights at level ``down1`` for the notebook's set-up: (8, 4, 50, 65)."""
    if unanswered(answer):
        return False
    shape = as_shape(answer)
    if shape is None or len(shape) != 4:
        return verdict(False, "", "give four numbers, (batch, heads, queries, keys), e.g. as a tuple.")
    batch, heads, queries, keys = shape
    if (batch, heads) != EXPECTED[:2]:
        return verdict(False, "", "the first two axes are the batch (8 signals) and the heads (num_heads=4).")
    if keys != EXPECTED[3]:
        return verdict(False, "", "the keys are the image tokens: how many tokens does the condition hold?")
    if queries != EXPECTED[2]:
        return verdict(False, "", "the queries are the time steps of the feature map at that level: level 0 "
                       "has all 100, and every level halves the time axis.")
    return verdict(True, "one weight per (signal, head, time step, image token); each row over the 65 "
                   "tokens sums to 1.", "")
