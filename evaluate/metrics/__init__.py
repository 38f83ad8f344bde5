"""The metrics `anigan evaluate` computes, by name: one module each, selected by `evaluate.metrics`.

Every module `evaluate/metrics/<name>.py` does its own maths and ends with `score(inputs) ->
MetricResult`, the one entry point the stage calls; the names themselves are declared once, in
the params (`anigan.params.evaluate.METRICS`), and run in the order `evaluate.metrics` lists them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from anigan.params.evaluate import METRICS, EvaluateParams


@dataclass(frozen=True)
class EvalInputs:
    """What every metric may look at: one checkpoint's samples, the packed splits, the networks."""

    params: EvaluateParams
    dataset: Path
    meta: dict[str, Any]  # the checkpoint's
    generator: torch.nn.Module
    discriminator: torch.nn.Module
    device: torch.device
    noise: torch.Tensor
    labels: torch.Tensor | None  # the colours an ACGAN was asked for; None for a DCGAN
    samples: np.ndarray  # uint8 (N, S, S, 3), generated from `noise` (and `labels`)
    train: np.ndarray  # memory-mapped
    test: np.ndarray  # memory-mapped
    test_capped: np.ndarray  # at most num_samples test images, seeded: where a metric compares counts


@dataclass(frozen=True)
class MetricResult:
    """A metric's numbers for metrics.json, why any part was skipped, and what the report shows besides."""

    values: dict[str, float | int]
    skipped: tuple[str, ...] = ()
    details: Any = None


def subset(count: int, limit: int, seed: int) -> np.ndarray:
    """Sorted indices of at most `limit` of `count` items, chosen with `seed` (all of them when few)."""
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size=limit, replace=False))


def compute(name: str, inputs: EvalInputs) -> MetricResult:
    """Run one metric by its name in `METRICS`."""
    if name not in METRICS:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return importlib.import_module(f"{__name__}.{name}").score(inputs)
