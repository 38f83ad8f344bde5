"""An exponential moving average of the generator's weights: steadier samples than the raw weights."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn


class EMA:
    """Keeps `model` = a running average of another model's parameters.

    Batch-norm statistics cannot be averaged like weights: the live generator's running
    statistics describe the live weights, not the averaged ones, and using them washes the
    averaged generator's images out. So `recompute_batch_norm` measures them afresh on the
    averaged weights ("standing statistics") before the model is used or saved.
    """

    def __init__(self, source: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(source).eval().requires_grad_(False)

    def decay_at(self, iteration: int) -> float:
        """The decay used at `iteration`: it ramps up from 0.1 so early weights do not linger in short runs."""
        return min(self.decay, (1 + iteration) / (10 + iteration))

    @torch.no_grad()
    def update(self, source: nn.Module, iteration: int) -> None:
        """Move the averaged weights towards `source`'s current ones (no host sync)."""
        weight = 1.0 - self.decay_at(iteration)
        torch._foreach_lerp_(list(self.model.parameters()), list(source.parameters()), weight)

    @torch.no_grad()
    def recompute_batch_norm(self, noise_batches: Iterable[torch.Tensor | tuple[torch.Tensor, ...]]) -> None:
        """Set the averaged model's batch-norm statistics to their mean over these noise batches.

        A batch is the model's input: noise, or a tuple of inputs (an ACGAN's noise and labels).
        """
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a plain average over the batches below
        self.model.train()
        try:
            for batch in noise_batches:
                self.model(*batch) if isinstance(batch, tuple) else self.model(batch)
        finally:
            self.model.eval()
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum
