"""A trained model, ready to sample: where it comes from, how it loads, and how it samples.

:func:`load_model` takes "bundled", an exported model folder or a training run
folder, and refuses a model made for other data or another conditioning.
:class:`SamplingSettings` holds the choices of one sampling run; a diffusion
model's single sample is one plausible response, noise included, so
``samples_per_image`` draws several per image to estimate the expected one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from i2b_minimal.method import readouts
from i2b_minimal.training import checkpoint, export
from i2b_minimal.training.bounds import Bounds, check_setting, whole

BUNDLED_MODEL = Path(__file__).parents[2] / "assets" / "eeg-small-cross-attention"
# The bundled models by name: every subject of the small synthetic EEG world, and of the MEG world.
BUNDLED_MODELS = {"bundled": BUNDLED_MODEL, "bundled-meg": BUNDLED_MODEL.parent / "meg-small-cross-attention"}
SAMPLERS = ("ddim", "ddpm")
# Each number setting's valid values, and the `i2b sample`/`evaluate` option that sets it.
SAMPLING_BOUNDS = {"num_inference_steps": (whole(1), "steps"),
                   "eta": (Bounds(0, 1, meaning="0: deterministic DDIM, 1: as much fresh noise as DDPM"), None),
                   "guidance_scale": (Bounds(0, meaning="1: no guidance, 0: unconditional"), None),
                   "samples_per_image": (whole(1), None), "seed": (whole(0), None), "batch_size": (whole(1), None)}


@dataclass(frozen=True)
class SamplingSettings:
    """How to sample: DDIM with ``num_inference_steps`` (Song et al. 2021) or DDPM with every training step
    (Ho et al. 2020); DDIM's ``eta`` (eq. 16: the share of fresh noise in each jump; DDPM ignores it, its
    noise is its posterior's); guidance ``guidance_scale`` (Ho & Salimans 2022; 1 is none);
    ``samples_per_image`` draws per image; a ``seed``; ``batch_size`` signals per network pass (memory, not
    results).

    The defaults, 100 deterministic steps (eta 0), were chosen on the validation split of the bundled EEG recipe
    (12800 training steps) for single trials whose spread matches recorded ones (every channel's dispersion ratio
    in [0.9, 1.1]; at 50 steps the lowest channel falls to 0.89): ``benchmarks/results/quality.md``, "Twice as
    long again". The right sampler depends on how long a model trained: fewer deterministic steps spread a
    long-trained model's samples less ("Training longer"), while models trained for 1600 steps or fewer spread
    theirs more and do best with 20 steps ("Sampler settings"; the quickstart's ``QUICKSTART_SAMPLING``).
    """

    num_inference_steps: int = 100
    sampler: str = "ddim"
    eta: float = 0.0
    guidance_scale: float = 1.0
    samples_per_image: int = 1
    seed: int = 0
    batch_size: int = 256

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, not {self.sampler!r}")
        for name, (bounds, option) in SAMPLING_BOUNDS.items():
            check_setting(name, getattr(self, name), bounds, option)


def sampling_settings(base: SamplingSettings | None = None, **options) -> SamplingSettings:
    """``base`` (default: :class:`SamplingSettings`'s defaults) with the fields named in ``options`` changed."""
    return replace(base or SamplingSettings(), **options)


@dataclass
class TrainedModel:
    """An exported model with what it needs to run: the noise schedule, its metadata and its CLIP encoder."""

    path: Path
    network: torch.nn.Module
    schedule: object  # diffusion.NoiseSchedule
    meta: dict  # written by train.py: data, channels, normalisation, encoder, config
    encoder: object | None  # clip.ImageEncoder, None for conditioning="none"

    @property
    def conditioning(self) -> str:
        return self.meta["conditioning"]

    @property
    def subjects(self) -> list[int]:
        """The subjects the model was trained on; several share one network through a subject embedding."""
        return export.trained_subjects(self.meta)

    def subject_rows(self, subject: int | None, n: int) -> torch.Tensor | None:
        """What the network reads for ``subject`` (default: the model's first): its row in the subject table,
        n times, or None.

        None for a model of one subject (it has no table), and for a subject outside a multi-subject model's
        table: the mean of the learned rows, the cross-subject prediction (``method/subjects.py``).
        """
        subject = self.subjects[0] if subject is None else int(subject)
        if self.network.subjects is None or subject not in self.subjects:
            return None
        return torch.full((n,), self.subjects.index(subject), dtype=torch.long)

    def condition(self, tokens: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor | None:
        """What the U-Net reads, exactly as in training: tokens for cross-attention, the pooled embedding otherwise."""
        return {"cross_attention": tokens, "concat": pooled, "add": pooled}.get(self.conditioning)

    def image_condition(self, images, progress: bool = True) -> torch.Tensor | None:
        """What the U-Net reads for ``images`` (paths or PIL images): encoded by the model's CLIP, or None."""
        from i2b_minimal.method import clip

        if self.encoder is None:
            return None
        return self.condition(*self.encoder.encode([clip.load_rgb(image) for image in images], progress=progress))

    def sample(self, cond: torch.Tensor | None, n_images: int, settings: SamplingSettings | None = None,
               progress: bool = True, subject: int | None = None, **options) -> np.ndarray:
        """(n_images, samples_per_image, C, T) signals in the data's units.

        ``settings`` (or its fields as keywords, e.g. ``num_inference_steps=25``)
        say how. Every image's condition is repeated ``samples_per_image`` times
        and the lot is sampled in batches of ``batch_size``. Sample j of image i
        draws x_T and every step's noise from its own generator, seeded with
        (seed, i, j), so it is the same whatever else is in the call or its batch.
        ``subject``: whose responses (:meth:`subject_rows`; default: the first of the model's subjects).
        """
        from tqdm.auto import tqdm

        settings = sampling_settings(settings, **options)
        if n_images < 1:
            raise ValueError(f"need at least one image, got {n_images}")
        repeats, size = settings.samples_per_image, settings.batch_size
        repeated = None if cond is None else cond.repeat_interleave(repeats, dim=0)
        total, shape = n_images * repeats, (self.meta["n_channels"], self.meta["n_times"])
        rows = self.subject_rows(subject, total)
        starts = range(0, total, size)
        out = [self._sample_batch(None if repeated is None else repeated[start:start + size],
                                  None if rows is None else rows[start:start + size],
                                  range(start, min(start + size, total)), shape, settings, progress and len(starts) < 2)
               for start in tqdm(starts, desc=f"{settings.sampler.upper()} batches", unit="batch",
                                 disable=not progress or len(starts) < 2)]
        signals = export.to_data_units(torch.cat(out).numpy(), self.meta)
        if not np.isfinite(signals).all():  # NaN signals are never a result
            raise RuntimeError(f"sampling {self.path} gave NaN or Inf values; its weights or meta.json "
                               "normalisation are damaged: export or train the model again")
        return signals.reshape(n_images, repeats, *shape)

    @torch.no_grad()
    def conditional_mean(self, cond: torch.Tensor | None, n_images: int, subject: int | None = None,
                         num_draws: int = readouts.DEFAULT_DRAWS, seed: int = 0, batch_size: int = 256) -> np.ndarray:
        """E[x_0 | image] of ``subject`` (default: the model's first) per image, (n_images, C, T) in the data's
        units: ``method/readouts.py``'s conditional mean, one network pass per draw of x_T."""
        shape = (n_images, self.meta["n_channels"], self.meta["n_times"])
        rows = self.subject_rows(subject, n_images)
        mean = readouts.conditional_mean(self.network, self.schedule, cond, shape, num_draws=num_draws, seed=seed,
                                         batch_size=batch_size, subject=rows)
        return export.to_data_units(mean.cpu().numpy(), self.meta)

    def _sample_batch(self, cond, subject, rows: range, shape, settings: SamplingSettings, progress: bool):
        from i2b_minimal.method import diffusion, loop

        device = next(self.network.parameters()).device
        repeats = settings.samples_per_image
        # Row r is sample r % repeats of image r // repeats; (seed, image, sample) is mixed into its stream as
        # training mixes (seed, step, shard).
        generators = [loop.step_generator(settings.seed, r // repeats, r % repeats, device) for r in rows]
        common = dict(cond=cond, guidance_scale=settings.guidance_scale, progress=progress, generator=generators,
                      subject=subject)
        if settings.sampler == "ddim":
            x = diffusion.ddim_sample(self.network, self.schedule, (len(rows), *shape),
                                      num_inference_steps=settings.num_inference_steps, eta=settings.eta, **common)
        else:
            x = diffusion.ddpm_sample(self.network, self.schedule, (len(rows), *shape), **common)
        return x.float().cpu()


def resolve_model(source) -> Path:
    """``"bundled"`` (EEG) or ``"bundled-meg"``, an exported model folder, or a training run folder (whose
    ``model/`` is used)."""
    from i2b_minimal.training import train

    path = BUNDLED_MODELS.get(str(source)) or Path(source).expanduser()
    if (path / train.MODEL_DIR / export.META_FILE).is_file():
        return path / train.MODEL_DIR
    if (path / checkpoint.STATE_FILE).is_file():
        raise ValueError(f"{path} is a training checkpoint, not an exported model; finish the run with "
                         f"`i2b train --resume --output-dir RUN` and use RUN (or RUN/{train.MODEL_DIR})")
    return path


def load_model(source="bundled", data=None, conditioning: str | None = None, device=None,
               progress: bool = True) -> TrainedModel:
    """Load a trained model and its CLIP encoder; refuse one made for other ``data`` or another ``conditioning``."""
    from i2b_minimal.method import clip

    path = resolve_model(source)
    network, schedule, meta = export.load_trained(path, data=data, conditioning=conditioning, device=device)
    encoder = None
    if meta["conditioning"] != "none":
        encoder = clip.ImageEncoder(meta["encoder"]["name"], device=device, progress=progress)
        export.check_compatible(meta, export.describe(encoder=encoder, conditioning=meta["conditioning"]),
                                source=path)
    return TrainedModel(path, network, schedule, meta, encoder)
