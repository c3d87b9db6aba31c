"""From a trained model to numbers and pictures: load, sample, evaluate, and the whole quickstart.

Three verbs, each one function, each one ``i2b`` command, one module per idea:

- ``trained_model``: :func:`load_model` ("bundled", "bundled-meg", a model folder or a run folder),
  :class:`TrainedModel` and its ``sample``, and :class:`SamplingSettings`, the
  choices of one sampling run that the three verbs share;
- ``generation``: :func:`generate` (``i2b sample``), pictures in, brain signals out;
- ``scoring``: :func:`evaluate` (``i2b evaluate``), the test images scored against
  the ridge baseline and the noise ceiling;
- ``data_roots``: where a model's data lives now, and the command that makes it;
- ``quickstart_recipe``: :func:`quickstart` (``i2b quickstart``), its training run and its sampler.
"""

from .data_roots import how_to_make, training_root
from .generation import generate
from .quickstart_recipe import QUICKSTART_SAMPLING, quickstart, quickstart_config
from .scoring import EVALUATION_SAMPLING, evaluate
from .trained_model import (BUNDLED_MODEL, BUNDLED_MODELS, SAMPLERS, SamplingSettings, TrainedModel, load_model, resolve_model,
                            sampling_settings)

__all__ = ["how_to_make", "training_root", "generate", "quickstart", "quickstart_config", "QUICKSTART_SAMPLING",
           "EVALUATION_SAMPLING", "evaluate", "BUNDLED_MODEL", "BUNDLED_MODELS", "SAMPLERS", "SamplingSettings",
           "TrainedModel", "load_model", "resolve_model", "sampling_settings"]
