"""Training the tiny CLIP on the CPU: the settings that decide the weights, and the loop.

As CLIP was trained (Radford et al. 2021, section 2.5 and its table of
hyperparameters): AdamW with betas (0.9, 0.98) and eps 1e-6, a warm-up into a
cosine decay, no weight decay on gains or biases, and a learned temperature
that starts at 0.07 and may not scale the logits by more than 100.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from i2b_minimal.method.clip import TINY_CLIP_DIR
from i2b_minimal.method.hardware import apply_thread_policy
from i2b_minimal.world import synthetic

from .mirror_twins import twin_batches, with_mirror_twins
from .tokenizer import WordTokenizer
from .towers import IMAGE_SIZE, build_towers, contrastive_loss, image_processor
from .world_split import sample_world


@dataclass
class TinyCLIPConfig:
    """Everything that decides the bundled weights (the model card lists it)."""

    steps: int = 800
    batch_size: int = 128
    pool_size: int = 12288  # distinct training combinations (their mirror twins join them), drawn once
    learning_rate: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50
    seed: int = 0
    hidden_size: int = 128
    vision_layers: int = 4
    text_layers: int = 2
    projection_dim: int = 128


def _draw_pool(world: list[dict], processor, progress: bool) -> torch.Tensor:
    """The training pictures, drawn and preprocessed once.

    Kept in float16 (rounding ~1e-3 of the normalised range) to halve the memory.
    """
    return torch.cat([processor(images=[synthetic.draw_image(a, IMAGE_SIZE) for a in world[i:i + 256]],
                                return_tensors="pt")["pixel_values"].half()
                      for i in tqdm(range(0, len(world), 256), desc="drawing", disable=not progress)])


def _optimizer(towers, logit_scale: torch.nn.Parameter, config: TinyCLIPConfig):
    """AdamW and its warm-up + cosine schedule; no weight decay on gains, biases or the temperature (as CLIP)."""
    params = [p for tower in towers for p in tower.parameters()]
    optimizer = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2]},
                                   {"params": [p for p in params if p.ndim < 2] + [logit_scale], "weight_decay": 0.0}],
                                  lr=config.learning_rate, betas=(0.9, 0.98), eps=1e-6, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / config.warmup_steps)
                                                 * 0.5 * (1 + math.cos(math.pi * step / config.steps)))
    return optimizer, schedule


def train(out_dir=TINY_CLIP_DIR, config: TinyCLIPConfig | None = None, progress: bool = True) -> dict:
    """Train the tiny CLIP on the CPU and save it to ``out_dir``; returns what the model card reports."""
    config = config or TinyCLIPConfig()
    apply_thread_policy()  # like every training entry point: two threads beside a busy process crawl
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    tokenizer, processor = WordTokenizer.from_world(), image_processor()
    world, twin = with_mirror_twins(sample_world(rng, config.pool_size, held_out=False))
    pixels = _draw_pool(world, processor, progress)
    input_ids, attention_mask = tokenizer([synthetic.caption(a) for a in world])
    vision, text = build_towers(len(tokenizer.vocab), config)
    logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's initial temperature 0.07
    optimizer, schedule = _optimizer((vision, text), logit_scale, config)
    vision.train(), text.train()
    batches, losses = twin_batches(rng, twin, config.batch_size), []
    bar = tqdm(range(config.steps), desc="tiny CLIP", disable=not progress)
    for _ in bar:
        batch = next(batches)
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
            "torch_threads": torch.get_num_threads(), "load_average": round(os.getloadavg()[0], 1),
            "training_pictures": len(world), "final_loss": round(float(np.mean(losses[-20:])), 4),
            "temperature": round(1 / logit_scale.exp().item(), 4),
            "vision_parameters": vision.num_parameters(), "text_parameters": text.num_parameters(),
            "vision_megabytes": round((out_dir / "model.safetensors").stat().st_size / 2**20, 2)}
