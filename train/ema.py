"""An exponential moving average of the generator's weights: steadier samples than the raw weights."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps `model` = a running average of another model's parameters (buffers are copied as they are)."""

    def __init__(self, source: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(source).eval().requires_grad_(False)

    def decay_at(self, iteration: int) -> float:
        """The decay used at `iteration`: it ramps up from 0.1 so early weights do not linger in short runs."""
        return min(self.decay, (1 + iteration) / (10 + iteration))

    @torch.no_grad()
    def update(self, source: nn.Module, iteration: int) -> None:
        """Move the average towards `source`'s current weights (no host sync)."""
        weight = 1.0 - self.decay_at(iteration)
        torch._foreach_lerp_(list(self.model.parameters()), list(source.parameters()), weight)
        for mine, theirs in zip(self.model.buffers(), source.buffers(), strict=True):
            mine.copy_(theirs)
