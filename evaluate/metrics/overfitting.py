"""Overfitting gap: does the discriminator score the training reals higher than held-out test reals?

A discriminator that has memorised its training set gives those images clearly higher scores
than real faces it never saw; a healthy one scores both alike. Scores are D's raw logits (its
output before the sigmoid), which mean the same under the bce and the hinge loss. Both means come
from at most `evaluate.num_samples` images of each split, seeded, read from the memory maps.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from evaluate.metrics import EvalInputs, MetricResult, subset


@torch.no_grad()
def discriminator_scores(discriminator: nn.Module, images: np.ndarray, device: torch.device, batch_size: int) -> np.ndarray:
    """D's logit for each uint8 image (N, S, S, 3), scaled to [-1, 1] as in training; float64 (N,)."""
    scores = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.array(images[start : start + batch_size], copy=True)).to(device)
        batch = batch.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        scores.append(discriminator(batch).double().cpu().numpy())
    return np.concatenate(scores) if scores else np.zeros(0)


def overfitting_gap(
    discriminator: nn.Module,
    train: np.ndarray,
    test: np.ndarray,
    device: torch.device,
    batch_size: int,
    limit: int,
    seed: int,
) -> dict[str, float | int]:
    """Mean D logit on (at most `limit`, seeded) train reals and on test reals, train minus test, and
    the standard error of that difference: a subset answers the question once the gap is clearly
    larger than its error."""
    train_rows, test_rows = subset(len(train), limit, seed), subset(len(test), limit, seed)
    on_train = discriminator_scores(discriminator, train[train_rows], device, batch_size)
    on_test = discriminator_scores(discriminator, test[test_rows], device, batch_size)
    mean_train, mean_test = float(on_train.mean()), float(on_test.mean())
    stderr = math.sqrt(_variance_of_mean(on_train) + _variance_of_mean(on_test))
    return {
        "d_logit_train": mean_train,
        "d_logit_test": mean_test,
        "d_overfit_gap": mean_train - mean_test,
        "d_overfit_gap_stderr": stderr,
        "d_gap_train_images": len(train_rows),
        "d_gap_test_images": len(test_rows),
    }


def _variance_of_mean(scores: np.ndarray) -> float:
    return float(scores.var(ddof=1) / len(scores)) if len(scores) > 1 else 0.0


def score(inputs: EvalInputs) -> MetricResult:
    """The discriminator's mean logit on train against test reals."""
    p = inputs.params
    return MetricResult(overfitting_gap(inputs.discriminator, inputs.train, inputs.test, inputs.device, p.batch_size, p.num_samples, p.seed))
