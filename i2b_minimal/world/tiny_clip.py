"""The bundled tiny CLIP: contrastive image-caption training on the offline world.

CLIP (Radford et al. 2021) trains an image encoder and a text encoder together
so that a picture and its caption land close together in a shared embedding
space and away from every other caption in the batch. Here both towers are
small ``transformers`` CLIP models (a 64-pixel ViT with 8-pixel patches, so
65 tokens of width 128) trained on images drawn by ``synthetic.draw_image``
with captions from ``synthetic.caption``. The captions name all six attributes
the simulated brain responds to, so telling captions apart forces the image
features to carry shape, colour, size, position, texture and background.

One attribute combination in ten (chosen by a fixed hash of its caption) is
never shown in training; retrieval and the linear probes are measured on
fresh drawings of those unseen combinations, so the figures are about
generalisation, not memory. ``i2b clip train`` reproduces the bundled weights,
their ``metrics.json`` and their model card.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import synthetic
from i2b_minimal.method.clip import TINY_CLIP_DIR, ImageEncoder, _image_processor_class

IMAGE_SIZE = 64
PATCH_SIZE = 8
MAX_CAPTION_TOKENS = 24
# CLIPTextModel pools the hidden state at the first <eos>, found by its id (any id but the legacy 2).
SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")
HELD_OUT_EVERY = 10
PROBE_VIEWS = ("pooled", "mean_tokens", "all_tokens")
PROBE_ALPHAS = 10.0 ** np.arange(-2, 6)  # ridge penalties (powers of ten) the probes choose among by cross-validation


@dataclass
class TinyCLIPConfig:
    """Everything that decides the bundled weights (the model card lists it)."""

    steps: int = 800
    batch_size: int = 128
    pool_size: int = 12288  # distinct training images, drawn once and revisited every epoch
    learning_rate: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50
    seed: int = 0
    hidden_size: int = 128
    vision_layers: int = 4
    text_layers: int = 2
    projection_dim: int = 128


# ----------------------------------------------------------------------------- captions -> token ids


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


# ----------------------------------------------------------------------------- the world, split by combination


def is_held_out(attributes: dict) -> bool:
    """True for the combinations kept out of training (crc32 is stable across runs, unlike hash())."""
    return zlib.crc32(synthetic.caption(attributes).encode()) % HELD_OUT_EVERY == 0


def sample_world(rng: np.random.Generator, n: int, held_out: bool) -> list[dict]:
    """``n`` distinct attribute combinations from the training (or held-out) side of the split."""
    chosen: dict[str, dict] = {}
    while len(chosen) < n:
        for attributes in synthetic.sample_attributes(rng, 4 * n):
            if is_held_out(attributes) == held_out and len(chosen) < n:
                chosen.setdefault(synthetic.caption(attributes), attributes)
    return list(chosen.values())


def image_processor():
    """CLIP's preprocessing (bicubic resize, centre crop, OpenAI mean/std), at 64 pixels."""
    return _image_processor_class()(size={"shortest_edge": IMAGE_SIZE},
                                    crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})


# ----------------------------------------------------------------------------- model and loss


def build_towers(vocab_size: int, config: TinyCLIPConfig):
    """A vision and a text CLIP tower with projections into one ``projection_dim`` space."""
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


def train(out_dir=TINY_CLIP_DIR, config: TinyCLIPConfig | None = None, progress: bool = True) -> dict:
    """Train the tiny CLIP on the CPU and save it to ``out_dir``; returns what the model card reports."""
    config = config or TinyCLIPConfig()
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    tokenizer, processor = WordTokenizer.from_world(), image_processor()
    world = sample_world(rng, config.pool_size, held_out=False)
    # Drawn and preprocessed once; kept in float16 (rounding ~1e-3 of the normalised range) to halve the memory.
    pixels = torch.cat([processor(images=[synthetic.draw_image(a, IMAGE_SIZE) for a in world[i:i + 256]],
                                  return_tensors="pt")["pixel_values"].half()
                        for i in tqdm(range(0, len(world), 256), desc="drawing", disable=not progress)])
    input_ids, attention_mask = tokenizer([synthetic.caption(a) for a in world])
    vision, text = build_towers(len(tokenizer.vocab), config)
    logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's initial temperature 0.07
    params = [p for tower in (vision, text) for p in tower.parameters()]
    # Weight decay on matrices only, not on gains, biases or the temperature (as in CLIP's training code).
    optimizer = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2]},
                                   {"params": [p for p in params if p.ndim < 2] + [logit_scale], "weight_decay": 0.0}],
                                  lr=config.learning_rate, betas=(0.9, 0.98), eps=1e-6, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / config.warmup_steps)
                                                 * 0.5 * (1 + math.cos(math.pi * step / config.steps)))
    vision.train(), text.train()
    order, cursor, losses = np.empty(0, dtype=int), 0, []
    bar = tqdm(range(config.steps), desc="tiny CLIP", disable=not progress)
    for _ in bar:
        if cursor + config.batch_size > len(order):  # a new epoch: a new shuffle of the pool
            order, cursor = rng.permutation(len(world)), 0
        batch = order[cursor:cursor + config.batch_size]
        cursor += config.batch_size
        loss = contrastive_loss(vision(pixel_values=pixels[batch].float()).image_embeds,
                                text(input_ids=input_ids[batch], attention_mask=attention_mask[batch]).text_embeds,
                                logit_scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():  # CLIP clips the logit scale at 100 to keep training stable
            logit_scale.clamp_(0, math.log(100))
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", temperature=f"{1 / logit_scale.exp().item():.3f}")
    out_dir = Path(out_dir)
    vision.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    text.save_pretrained(out_dir / "text")
    tokenizer.save(out_dir / "text")
    return {"config": asdict(config), "train_seconds": round(time.perf_counter() - started, 1),
            "torch_threads": torch.get_num_threads(), "load_average": round(os.getloadavg()[0], 1), "final_loss": round(float(np.mean(losses[-20:])), 4),
            "temperature": round(1 / logit_scale.exp().item(), 4),
            "vision_parameters": vision.num_parameters(), "text_parameters": text.num_parameters(),
            "vision_megabytes": round((out_dir / "model.safetensors").stat().st_size / 2**20, 2)}


# ----------------------------------------------------------------------------- evaluation


def retrieval(folder=TINY_CLIP_DIR, n_images: int = 500, seed: int = 1, draw_size: int = IMAGE_SIZE) -> dict:
    """Top-1 / top-5 image->caption and caption->image retrieval among ``n_images`` unseen combinations."""
    from transformers import CLIPTextModelWithProjection

    world = sample_world(np.random.default_rng(seed), n_images, held_out=True)
    encoder = ImageEncoder(folder, progress=False)
    _, image_embeds = encoder.encode([synthetic.draw_image(a, draw_size) for a in world])
    text = CLIPTextModelWithProjection.from_pretrained(Path(folder) / "text").float().eval()
    ids, mask = WordTokenizer.load(Path(folder) / "text")([synthetic.caption(a) for a in world])
    with torch.inference_mode():
        text_embeds = text(input_ids=ids, attention_mask=mask).text_embeds
    similarity = torch.nn.functional.normalize(image_embeds, dim=-1) @ torch.nn.functional.normalize(text_embeds, dim=-1).T
    truth = torch.arange(n_images)[:, None]
    result = {"n_images": n_images, "seed": seed, "draw_size": draw_size}
    for direction, scores in (("image_to_caption", similarity), ("caption_to_image", similarity.T)):
        ranked = scores.argsort(dim=1, descending=True)
        for k in (1, 5):
            result[f"{direction}_top{k}"] = round((ranked[:, :k] == truth).any(dim=1).float().mean().item(), 4)
    result.update(chance_top1=round(1 / n_images, 4), chance_top5=round(5 / n_images, 4))
    return result


def linear_probe(folder=TINY_CLIP_DIR, n_train: int = 3000, n_test: int = 1000, seed: int = 2,
                 progress: bool = True) -> dict:
    """Held-out accuracy of one linear probe per attribute, on three views of the same image features.

    ``pooled`` (the projected class token: what concat and add see), ``mean_tokens``, and ``all_tokens`` (the
    flattened 65 x 128 = 8320-number sequence that cross-attention reads). Probe: standardised features and a ridge
    classifier whose penalty is chosen among ``PROBE_ALPHAS`` by leave-one-out cross-validation on the training
    images (so 8320 features from 3000 images stay well-posed, and the test images never tune it). Trained on
    training combinations, tested on unseen ones; chance is the test set's most frequent value.
    """
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    train_world, test_world = sample_world(rng, n_train, held_out=False), sample_world(rng, n_test, held_out=True)
    encoder, features = ImageEncoder(folder, progress=False), {}
    for split, world in (("train", train_world), ("test", test_world)):
        tokens, pooled = encoder.encode([synthetic.draw_image(a, IMAGE_SIZE) for a in world])
        features[split] = {"pooled": pooled.numpy(), "mean_tokens": tokens.mean(dim=1).numpy(),
                           "all_tokens": tokens.flatten(1).numpy()}
    result = {"n_train": n_train, "n_test": n_test, "seed": seed, "alphas": [float(a) for a in PROBE_ALPHAS]}
    for attribute in tqdm(synthetic.ATTRIBUTES, desc="linear probes", disable=not progress):
        y_train, y_test = [a[attribute] for a in train_world], [a[attribute] for a in test_world]
        row = {"chance": round(max(y_test.count(v) for v in set(y_test)) / n_test, 4), "alpha": {}}
        for view in PROBE_VIEWS:
            probe = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=PROBE_ALPHAS))
            probe.fit(features["train"][view], y_train)
            row[view] = round(float(probe.score(features["test"][view], y_test)), 4)
            row["alpha"][view] = float(probe[-1].alpha_)
        result[attribute] = row
    return result


# ----------------------------------------------------------------------------- the model card


def train_and_report(out_dir=TINY_CLIP_DIR, config: TinyCLIPConfig | None = None, progress: bool = True) -> dict:
    """``i2b clip train``: train, measure, and write ``metrics.json`` and ``MODEL_CARD.md`` beside the weights."""
    out_dir = Path(out_dir)
    metrics = {"training": train(out_dir, config, progress), "retrieval": retrieval(out_dir),
               "retrieval_drawn_at_128px": retrieval(out_dir, draw_size=128),
               "linear_probe": linear_probe(out_dir, progress=progress)}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_model_card(out_dir)
    return metrics


def write_model_card(folder=TINY_CLIP_DIR) -> Path:
    """Write ``MODEL_CARD.md`` from the folder's ``metrics.json`` into the template ``assets/tiny_clip_card.md``."""
    folder = Path(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    probe = metrics["linear_probe"]
    retrieval_rows = [f"| {r['draw_size']} px | {r['image_to_caption_top1']:.3f} | {r['image_to_caption_top5']:.3f} | "
                      f"{r['caption_to_image_top1']:.3f} | {r['caption_to_image_top5']:.3f} | "
                      f"{r['chance_top1']:.3f} / {r['chance_top5']:.3f} |"
                      for r in (metrics["retrieval"], metrics["retrieval_drawn_at_128px"])]
    probe_rows = [f"| {a} | {len(values)} | " + " | ".join(f"{probe[a][view]:.3f}" for view in PROBE_VIEWS)
                  + f" | {probe[a]['chance']:.3f} |" for a, values in synthetic.ATTRIBUTES.items()]
    weak = [f"{a} ({probe[a]['pooled']:.3f} against {probe[a]['chance']:.3f})" for a in synthetic.ATTRIBUTES
            if probe[a]["pooled"] < 2 * probe[a]["chance"]]
    template = (Path(__file__).parents[1] / "assets" / "tiny_clip_card.md").read_text()
    n_tokens, config = (IMAGE_SIZE // PATCH_SIZE) ** 2 + 1, metrics["training"]["config"]
    card = template.format(
        t=metrics["training"], c=config, r=metrics["retrieval"], p=probe, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE,
        vocab_size=len(WordTokenizer.load(folder / "text").vocab), n_tokens=n_tokens,
        n_features=n_tokens * config["hidden_size"], alpha_min=min(probe["alphas"]), alpha_max=max(probe["alphas"]),
        held_out_every=HELD_OUT_EVERY, chance_loss=math.log(config["batch_size"]),
        retrieval_rows="\n".join(retrieval_rows), probe_rows="\n".join(probe_rows), weak=", ".join(weak) or "none")
    (folder / "MODEL_CARD.md").write_text(card)
    return folder / "MODEL_CARD.md"
