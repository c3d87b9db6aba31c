"""i2b-minimal: generate EEG and MEG signals from images.

A frozen CLIP image encoder conditions a 1D U-Net denoising diffusion model
through cross-attention, following Xu, Long & Zhang, "Image-to-Brain Signal
Generation for Visual Prosthesis with CLIP Guided Multimodal Diffusion Models"
(arXiv 2509.00787).

The package is a house with one room per concern (ARCHITECTURE.md draws it):

- ``method/``: the paper's method, and nothing else; it imports nothing from the rest.
- ``datasets/``: the THINGS-EEG2 and THINGS-MEG files, their loaders, downloads, the feature cache.
- ``world/``: the offline world: drawn pictures, a simulated brain, the tiny CLIP trained on them.
- ``training/``: the robust trainer around the method's training step, checkpoints, export.
- ``evaluation/``: metrics, the ridge baseline, ERPs, figures.
- ``app/``: the pipeline behind the ``i2b`` command, its reports and the command itself.
- ``teaching/``: the notebooks' widgets and exercises.

Every module keeps the short name it had when the package was flat
(``from i2b_minimal import data, synthetic, clip, unet, diffusion, metrics``,
``import i2b_minimal.train``): :data:`MODULES` maps each to its room, and the
names resolve lazily, so ``import i2b_minimal`` stays fast.
"""

import importlib
import importlib.abc
import importlib.machinery
import sys

__version__ = "0.1.0"

MODULES = {
    # the method, in reading order
    "clip": "method.clip", "attention": "method.attention", "unet": "method.unet",
    "diffusion": "method.diffusion", "loop": "method.loop", "hardware": "method.hardware",
    # datasets and the offline world that writes them
    "data": "datasets.loaders", "things_format": "datasets.things_format", "sensors": "datasets.sensors",
    "download": "datasets.download", "features": "datasets.features",
    "pictures": "world.pictures", "brain": "world.brain", "synthetic": "world.synthetic",
    "tiny_clip": "world.tiny_clip",
    # training, evaluation, the app, teaching
    "train": "training.train", "checkpoint": "training.checkpoint", "export": "training.export",
    "metrics": "evaluation.metrics", "erp": "evaluation.erp", "baselines": "evaluation.baselines",
    "viz": "evaluation.viz", "pipeline": "app.pipeline", "report": "app.report", "cli": "app.cli",
    "widgets": "teaching.widgets", "exercises": "teaching.exercises",
}


def _target(fullname: str) -> str | None:
    """``i2b_minimal.data`` -> ``i2b_minimal.datasets.loaders`` (and below: ``exercises.nb05``)."""
    short, _, rest = fullname.removeprefix(__name__ + ".").partition(".")
    if not fullname.startswith(__name__ + ".") or short not in MODULES:
        return None
    return f"{__name__}.{MODULES[short]}" + (f".{rest}" if rest else "")


class _ShortNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports of a short name give the module in its room: one module object under two names."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.machinery.ModuleSpec(fullname, self) if _target(fullname) else None

    def create_module(self, spec):
        return importlib.import_module(_target(spec.name))

    def exec_module(self, module):
        pass  # already executed under its real name

    def get_code(self, fullname):
        # ``python -m i2b_minimal.cli`` (runpy) runs the real module's code as __main__.
        real = importlib.util.find_spec(_target(fullname))
        return real.loader.get_code(real.name)


sys.meta_path.insert(0, _ShortNames())  # before the path finder, which would load a second copy


def __getattr__(name):
    if name in MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'i2b_minimal' has no attribute {name!r}")
