"""One network for many subjects: a learned subject embedding beside the image condition.

Brains differ: the same picture evokes, in each THINGS subject, components of
other latencies and, through another head and cap, other topographies. One
network can still serve them all when it is told whose brain it speaks for.
The standard way to tell a diffusion U-Net a discrete label is the class
embedding of class-conditional diffusion U-Nets (Dhariwal & Nichol 2021's ADM;
diffusers' ``class_embed_type``): a learned vector per label, added to the step embedding,
so every residual block's bias moves with it (``unet.ResBlock``). Here the label
is the subject; the image still enters through the condition (``conditioning.py``).

A subject the network never saw has no row. :class:`SubjectEmbedding` gives it
the mean of the learned rows, the "average subject": the cross-subject
prediction of a model trained on the other subjects (leave one subject out).
The rows start at zero, so at initialisation every subject is that average and
training moves each away from it only as far as its data asks.
"""

from __future__ import annotations

import torch
from torch import nn


class SubjectEmbedding(nn.Module):
    """A learned vector per subject, of the step embedding's width; ``None`` reads the mean of the rows.

    ``forward(subject)`` takes the rows (B,) int64 (0 to n_subjects - 1, in the order of the
    model's training subjects) and returns (B, width); ``forward(None, batch)`` returns the
    mean row, (batch, width), for a subject outside the table.
    """

    def __init__(self, n_subjects: int, width: int):
        super().__init__()
        if n_subjects < 2:
            raise ValueError(f"a subject embedding needs at least 2 subjects, got {n_subjects}; a model of one "
                             "subject has none (n_subjects=0)")
        self.table = nn.Embedding(n_subjects, width)
        nn.init.zeros_(self.table.weight)  # every subject starts as the average subject

    def forward(self, subject: torch.Tensor | None, batch: int | None = None) -> torch.Tensor:
        if subject is None:
            return self.table.weight.mean(dim=0).expand(batch, -1)
        if subject.dtype != torch.long or subject.dim() != 1:
            raise ValueError(f"subject must be a (batch,) int64 tensor of table rows, got {subject.dtype} "
                             f"{tuple(subject.shape)}")
        if len(subject) and (int(subject.min()) < 0 or int(subject.max()) >= self.table.num_embeddings):
            raise ValueError(f"subject rows must lie in 0..{self.table.num_embeddings - 1}, got "
                             f"{sorted(set(subject.tolist()))}")
        return self.table(subject)
