"""Memorization: how close generated samples come to the training images, measured against held-out reals.

Distance is the root-mean-square pixel difference of two images scaled to [0, 1]: 0 for
identical images, about 0.4 for unrelated random ones. For each generated sample we find its
nearest training image. The yardstick is the test split: real faces the generator never saw,
whose own nearest training images show how close an unseen face comes to the training set by
chance (near-duplicates were kept out of the test split by the dedupe groups). A sample nearer to
the training set than even the nearest test image is counted as memorized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from evaluate.metrics import EvalInputs, MetricResult


@dataclass(frozen=True)
class Neighbours:
    """For each query: the index of its nearest reference image and the RMS distance to it."""

    index: np.ndarray  # (Q,) int64
    distance: np.ndarray  # (Q,) float64


def _flat(images: np.ndarray) -> torch.Tensor:
    # A copy: the references are often a read-only memory map, which torch will not wrap.
    return torch.from_numpy(np.array(images, copy=True)).reshape(len(images), -1).float() / 255.0


def nearest_neighbours(queries: np.ndarray, references: np.ndarray, chunk: int = 2048) -> Neighbours:
    """Nearest reference image (by RMS pixel distance) of each query; uint8 arrays (N, H, W, 3).

    `references` may be memory-mapped: it is read `chunk` images at a time, so a large training
    set never has to fit in memory.
    """
    if len(references) == 0:
        raise ValueError("no reference images to compare with")
    if queries.shape[1:] != references.shape[1:]:
        raise ValueError(f"image shapes differ: {queries.shape[1:]} vs {references.shape[1:]}")
    q = _flat(queries)
    best = torch.full((len(q),), float("inf"))
    best_index = torch.zeros(len(q), dtype=torch.long)
    for start in range(0, len(references), chunk):
        r = _flat(references[start : start + chunk])
        d2 = torch.cdist(q, r).square_()  # the matrix-product form: fast, a little rounding near 0
        value, where = d2.min(dim=1)
        better = value < best
        best = torch.where(better, value, best)
        best_index = torch.where(better, where + start, best_index)
    index = best_index.numpy().astype(np.int64)
    # Recompute each winner's distance exactly, so a copied image scores exactly 0.
    winners = np.asarray(references[index])
    diff = queries.astype(np.float64) / 255.0 - winners.astype(np.float64) / 255.0
    distance = np.sqrt(np.mean(diff.reshape(len(queries), -1) ** 2, axis=1))
    return Neighbours(index=index, distance=distance)


@dataclass(frozen=True)
class Memorization:
    """Generated samples' nearest-training distances, set against the test split's."""

    samples: Neighbours  # each generated sample's nearest training image
    test: Neighbours  # each test image's nearest training image
    threshold: float  # the smallest test-to-train distance
    memorized_share: float  # share of samples strictly closer to training than `threshold`

    def metrics(self) -> dict[str, float]:
        """The flat numbers that go into metrics.json."""
        return {
            "nn_train_distance_mean": float(np.mean(self.samples.distance)),
            "nn_train_distance_min": float(np.min(self.samples.distance)),
            "test_nn_train_distance_mean": float(np.mean(self.test.distance)),
            "test_nn_train_distance_min": self.threshold,
            "memorized_share": self.memorized_share,
        }


def memorization(samples: np.ndarray, train: np.ndarray, test: np.ndarray) -> Memorization:
    """Nearest training image of every sample and test image, and the share of samples nearer than any test image."""
    if len(test) == 0:
        raise ValueError("memorization needs test images as the yardstick")
    sample_nn = nearest_neighbours(samples, train)
    test_nn = nearest_neighbours(test, train)
    threshold = float(np.min(test_nn.distance))
    share = float(np.mean(sample_nn.distance < threshold))
    return Memorization(samples=sample_nn, test=test_nn, threshold=threshold, memorized_share=share)


def score(inputs: EvalInputs) -> MetricResult:
    """Nearest training images of the samples and of the test split; `details` is the Memorization for the report."""
    result = memorization(inputs.samples, inputs.train, inputs.test)
    return MetricResult(result.metrics(), details=result)
