"""The two towers of the tiny CLIP and the loss that ties them (Radford et al. 2021).

A 64-pixel vision transformer with 8-pixel patches (so 8 x 8 + 1 = 65 tokens)
and a small text transformer, each with a projection into one shared space,
trained with the symmetric InfoNCE loss of CLIP's Fig. 3.
"""

from __future__ import annotations

import torch

from i2b_minimal.method.clip import image_processor_class

from .tokenizer import MAX_CAPTION_TOKENS

IMAGE_SIZE = 64
PATCH_SIZE = 8


def image_processor():
    """CLIP's preprocessing (bicubic resize, centre crop, OpenAI mean/std), at 64 pixels."""
    return image_processor_class()(size={"shortest_edge": IMAGE_SIZE},
                                   crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})


def build_towers(vocab_size: int, config):
    """A vision and a text CLIP tower with projections into one ``projection_dim`` space.

    ``config`` is a ``TinyCLIPConfig``; its ``hidden_size``, ``vision_layers``,
    ``text_layers`` and ``projection_dim`` decide the towers.
    """
    from transformers import (CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)

    width = dict(hidden_size=config.hidden_size, intermediate_size=2 * config.hidden_size,
                 num_attention_heads=4, projection_dim=config.projection_dim)
    vision = CLIPVisionModelWithProjection(CLIPVisionConfig(
        image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, num_hidden_layers=config.vision_layers, **width))
    text = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=vocab_size, max_position_embeddings=MAX_CAPTION_TOKENS, num_hidden_layers=config.text_layers,
        pad_token_id=0, bos_token_id=2, eos_token_id=3, **width))
    return vision, text


def contrastive_loss(image_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor):
    """Symmetric InfoNCE (Radford et al. 2021, Fig. 3): cross-entropy over the batch, both directions.

    Row i of the cosine-similarity matrix should pick caption i among all
    captions, and column i image i; ``logit_scale`` is the learned log inverse temperature.
    """
    image_embeds = torch.nn.functional.normalize(image_embeds, dim=-1)
    text_embeds = torch.nn.functional.normalize(text_embeds, dim=-1)
    logits = logit_scale.exp() * image_embeds @ text_embeds.T
    labels = torch.arange(len(logits), device=logits.device)
    return (torch.nn.functional.cross_entropy(logits, labels) + torch.nn.functional.cross_entropy(logits.T, labels)) / 2
