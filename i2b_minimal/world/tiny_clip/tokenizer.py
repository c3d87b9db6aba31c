"""Captions to token ids: a whole-word tokenizer over the world's closed caption vocabulary."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from i2b_minimal.world import synthetic

MAX_CAPTION_TOKENS = 24
# CLIPTextModel pools the hidden state at the first <eos>, found by its id (any id but the legacy 2).
SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")


class WordTokenizer:
    """Whole-word tokenizer over the world's closed caption vocabulary (saved as ``vocab.json``).

    Captions come from one template, so a word list is exact; CLIP's byte-pair
    tokenizer would need vocabulary files that only the hub has.
    """

    def __init__(self, vocab: dict[str, int]):
        self.vocab = vocab
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = (vocab[token] for token in SPECIAL_TOKENS)

    @staticmethod
    def words(text: str) -> list[str]:
        return re.findall(r"[a-z]+|[^\sa-z]", text.lower())

    @classmethod
    def from_world(cls) -> "WordTokenizer":
        """Every word of every caption: a caption per index k covers the k-th value of each attribute."""
        longest = max(len(values) for values in synthetic.ATTRIBUTES.values())
        covering = [{name: values[k % len(values)] for name, values in synthetic.ATTRIBUTES.items()}
                    for k in range(longest)]
        words = sorted({word for attributes in covering for word in cls.words(synthetic.caption(attributes))})
        return cls({token: i for i, token in enumerate(list(SPECIAL_TOKENS) + words)})

    def __call__(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> (input_ids, attention_mask), each (B, MAX_CAPTION_TOKENS): <bos> words <eos> <pad>..."""
        ids = torch.full((len(captions), MAX_CAPTION_TOKENS), self.pad_id, dtype=torch.long)
        for row, text in enumerate(captions):
            tokens = [self.bos_id] + [self.vocab.get(w, self.unk_id) for w in self.words(text)] + [self.eos_id]
            if len(tokens) > MAX_CAPTION_TOKENS:
                raise ValueError(f"caption {text!r} has {len(tokens)} tokens, more than {MAX_CAPTION_TOKENS}")
            ids[row, :len(tokens)] = torch.tensor(tokens)
        return ids, (ids != self.pad_id).long()

    def save(self, folder: Path) -> None:
        (Path(folder) / "vocab.json").write_text(json.dumps(self.vocab, indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "WordTokenizer":
        return cls(json.loads((Path(folder) / "vocab.json").read_text()))
