"""``i2b clip train`` end to end, and the model card written from the numbers it measured."""

from __future__ import annotations

import json
import math
from pathlib import Path

from i2b_minimal.method.clip import TINY_CLIP_DIR
from i2b_minimal.world import synthetic

from .fitting import TinyCLIPConfig, train
from .probes import PROBE_VIEWS, linear_probe, retrieval
from .tokenizer import WordTokenizer
from .towers import IMAGE_SIZE, PATCH_SIZE
from .world_split import HELD_OUT_EVERY

CARD_TEMPLATE = Path(__file__).parents[2] / "assets" / "tiny_clip_card.md"


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
    """Write ``MODEL_CARD.md`` from the folder's ``metrics.json`` into the template :data:`CARD_TEMPLATE`."""
    folder = Path(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    probe = metrics["linear_probe"]
    retrieval_rows = [f"| {r['draw_size']} px | {r['image_to_caption_top1']:.3f} | {r['image_to_caption_top5']:.3f} | "
                      f"{r['caption_to_image_top1']:.3f} | {r['caption_to_image_top5']:.3f} | "
                      f"{r['chance_top1']:.3f} / {r['chance_top5']:.3f} | {r['left_right']:.3f} |"
                      for r in (metrics["retrieval"], metrics["retrieval_drawn_at_128px"])]
    probe_rows = [f"| {a} | {len(values)} | " + " | ".join(f"{probe[a][view]:.3f}" for view in PROBE_VIEWS)
                  + f" | {probe[a]['chance']:.3f} |" for a, values in synthetic.ATTRIBUTES.items()]
    property_rows = [f"| {name} | " + " | ".join(f"{r2[view]:.2f}" for view in PROBE_VIEWS) + " |"
                     for name, r2 in probe["properties"].items()]
    weak = [f"{a} ({probe[a]['pooled']:.3f} against {probe[a]['chance']:.3f})" for a in synthetic.ATTRIBUTES
            if probe[a]["pooled"] < 2 * probe[a]["chance"]]
    template = CARD_TEMPLATE.read_text()
    n_tokens, config = (IMAGE_SIZE // PATCH_SIZE) ** 2 + 1, metrics["training"]["config"]
    card = template.format(
        t=metrics["training"], c=config, r=metrics["retrieval"], p=probe, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE,
        vocab_size=len(WordTokenizer.load(folder / "text").vocab), n_tokens=n_tokens,
        n_features=n_tokens * config["hidden_size"], alpha_min=min(probe["alphas"]), alpha_max=max(probe["alphas"]),
        held_out_every=HELD_OUT_EVERY, chance_loss=math.log(config["batch_size"]),
        retrieval_rows="\n".join(retrieval_rows), probe_rows="\n".join(probe_rows), weak=", ".join(weak) or "none",
        property_rows="\n".join(property_rows))
    (folder / "MODEL_CARD.md").write_text(card)
    return folder / "MODEL_CARD.md"
