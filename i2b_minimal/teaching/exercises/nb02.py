"""Notebook 02 (CLIP features): write the cosine similarity; how many tokens does a ViT make of one picture?"""

from __future__ import annotations

import torch

from . import Case, as_number, check_function, unanswered, verdict


def vit_tokens(image_size: int, patch_size: int) -> int:
    """One token per patch of a square grid, plus the class token (Dosovitskiy et al. 2021)."""
    return (image_size // patch_size) ** 2 + 1


def check_token_count(tiny, vit_large) -> bool | None:
    """Tokens per image of the bundled tiny CLIP, and of openai/clip-vit-large-patch14 (224 px, 14 px patches)."""
    from i2b_minimal.world.tiny_clip import IMAGE_SIZE, PATCH_SIZE

    if unanswered(tiny, vit_large):
        return None
    expected_tiny, expected_large = vit_tokens(IMAGE_SIZE, PATCH_SIZE), vit_tokens(224, 14)
    hint = ("a ViT cuts the square image into (image_size / patch_size)^2 patches, one token each, "
            "and adds one class token.")
    if as_number(tiny) != expected_tiny:
        return verdict(False, "", f"{hint} The tiny CLIP sees {IMAGE_SIZE} px images in {PATCH_SIZE} px patches.")
    if as_number(vit_large) != expected_large:
        return verdict(False, "", f"{hint} ViT-L/14 sees 224 px images in 14 px patches.")
    return verdict(True, f"tiny: ({IMAGE_SIZE}/{PATCH_SIZE})^2 + 1 = {expected_tiny}; ViT-L/14: (224/14)^2 + 1 = "
                   f"{expected_large}. Cross-attention reads all of them; concat and add see only one vector.", "")


def solution_cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every row of ``a`` (N, D) with every row of ``b`` (M, D): (N, M)."""
    ### BEGIN SOLUTION
    a = a / a.norm(dim=-1, keepdim=True)  # unit length: only the direction counts
    b = b / b.norm(dim=-1, keepdim=True)
    return a @ b.T
    ### END SOLUTION


def check_cosine_similarity(cosine_similarity) -> bool | None:
    """Compare ``cosine_similarity(a, b)`` with ``torch.nn.functional.cosine_similarity`` on random embeddings."""
    generator = torch.Generator().manual_seed(2)
    a, b = 3 * torch.randn(6, 32, generator=generator), torch.randn(9, 32, generator=generator)
    expected = torch.nn.functional.cosine_similarity(a[:, None], b[None], dim=-1)
    mistakes = [(a @ b.T, "divide by the lengths of both vectors: a dot product alone grows with them.")]
    return check_function(cosine_similarity, [Case({"a": a, "b": b}, expected, mistakes)],
                          "1 for the same direction, 0 for orthogonal embeddings, whatever their lengths.")
