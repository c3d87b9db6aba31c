"""An exponential moving average of the weights (Polyak averaging): what sampling uses.

Ho et al. 2020 used a decay of 0.9999 over 800k steps. Our runs last thousands of
steps, so the default is 0.999 (roughly the mean of the last 1000 steps), ramped up
as min(decay, (1 + n) / (10 + n)) so that the random initial weights are
forgotten quickly (the ``num_updates`` rule of TensorFlow's
ExponentialMovingAverage). The ramp reaches 0.999 only near step 8990, so in a
shorter run (the bundled MEG model's 1200 steps) the ramp alone sets the decay,
and any ``decay`` of 0.999 or more gives the same weights (notebook 06). The
bundled EEG model's 12800 steps pass it: its last 3810 average at the nominal 0.999.
"""

from __future__ import annotations

import torch


class EMA:
    """Exponential moving average of a model's weights, kept in float32."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().float().clone() for k, v in model.state_dict().items()}

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        weight = 1.0 - self.decay_at(step)
        for key, value in model.state_dict().items():
            self.shadow[key].lerp_(value.float(), weight)  # shadow += (1 - decay) (value - shadow)

    def copy_to(self, model: torch.nn.Module) -> torch.nn.Module:
        model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in self.shadow.items()})
        return model
