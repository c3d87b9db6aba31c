"""The bundled tiny CLIP: contrastive image-caption training on the offline world.

CLIP (Radford et al. 2021) trains an image encoder and a text encoder together
so that a picture and its caption land close together in a shared embedding
space and away from every other caption in the batch. Here both towers are
small ``transformers`` CLIP models (a 64-pixel ViT with 8-pixel patches, so
65 tokens of width 128) trained on images drawn by ``synthetic.draw_image``
with captions from ``synthetic.caption``. The captions name all six attributes
of a picture, but the loss rewards only what tells one batch's captions apart,
and random batches almost never need left and right: so each picture meets its
mirror twin in its batch (``mirror_twins``), and the features carry the side,
which the simulated brain reads through the hemispheres.

One attribute combination in ten (chosen by a fixed hash of its caption) is
never shown in training; retrieval and the linear probes are measured on
fresh drawings of those unseen combinations, so the figures are about
generalisation, not memory. ``i2b clip train`` reproduces the bundled weights,
their ``metrics.json`` and their model card.

One idea per module, in the order the weights are made:

- ``tokenizer``: captions to token ids, over the world's closed vocabulary;
- ``world_split``: which attribute combinations training never sees;
- ``mirror_twins``: batches in which each picture meets its mirror twin, so that left and right must be read;
- ``towers``: the two CLIP towers and the symmetric InfoNCE loss that ties them;
- ``fitting``: the settings that decide the weights and the training loop;
- ``probes``: retrieval and linear probes on unseen combinations;
- ``model_card``: ``i2b clip train`` end to end, and the card written from its numbers.
"""

from i2b_minimal.method.clip import TINY_CLIP_DIR

from .fitting import TinyCLIPConfig, train
from .mirror_twins import mirror, twin_batches, with_mirror_twins
from .model_card import train_and_report, write_model_card
from .probes import PROBE_ALPHAS, PROBE_VIEWS, linear_probe, retrieval
from .tokenizer import MAX_CAPTION_TOKENS, SPECIAL_TOKENS, WordTokenizer
from .towers import IMAGE_SIZE, PATCH_SIZE, build_towers, contrastive_loss, image_processor
from .world_split import HELD_OUT_EVERY, is_held_out, sample_world

__all__ = ["TINY_CLIP_DIR", "TinyCLIPConfig", "train", "train_and_report", "write_model_card", "PROBE_ALPHAS",
           "PROBE_VIEWS", "linear_probe", "retrieval", "MAX_CAPTION_TOKENS", "SPECIAL_TOKENS", "WordTokenizer",
           "IMAGE_SIZE", "PATCH_SIZE", "build_towers", "contrastive_loss", "image_processor", "HELD_OUT_EVERY",
           "is_held_out", "sample_world", "mirror", "twin_batches", "with_mirror_twins"]
