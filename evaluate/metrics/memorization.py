"""Memorization: how close generated samples come to the training images, measured against held-out reals.

Distance is the root-mean-square pixel difference of two images scaled to [0, 1]: 0 for
identical images, about 0.4 for unrelated random ones. For each generated sample we find its
nearest training image. The yardstick is the test split: real faces the generator never saw,
whose own nearest training images show how close an unseen face comes to the training set by
chance (near-duplicates were kept out of the test split by the dedupe groups). A sample nearer to
the training set than even the nearest test image is counted as memorized.

A large training set is searched through a seeded subset of it (`evaluate.nn_train_references`),
the test yardstick likewise (`evaluate.nn_test_images`): the cost grows with queries times
references, and samples and test images measured against the same references keep the comparison
fair. Distances grow as the references thin out, so they compare between runs only at equal
counts, which metrics.json records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from evaluate.metrics import EvalInputs, MetricResult, subset
from gan.packed import release_pages

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Neighbours:
    """For each query: the index of its nearest reference image and the RMS distance to it."""

    index: np.ndarray  # (Q,) int64, into the whole reference array
    distance: np.ndarray  # (Q,) float64


# Float32 bytes of one chunk of references: with cdist's working copy and the uint8 source, a
# chunk stays near three times this, whatever the image size or the number of references.
CHUNK_BYTES = 64 << 20


def _flat(images: np.ndarray, device: torch.device) -> torch.Tensor:
    # A copy: the references are often a read-only memory map, which torch will not wrap.
    return torch.from_numpy(np.array(images, copy=True)).to(device).reshape(len(images), -1).float().div_(255.0)


def default_chunk(image_shape: tuple[int, ...]) -> int:
    """References per chunk: CHUNK_BYTES of float32 pixels."""
    return max(1, CHUNK_BYTES // (4 * int(np.prod(image_shape))))


def _exact_distances(queries: np.ndarray, winners: np.ndarray, block: int = 256) -> np.ndarray:
    # float64, a block of queries at a time, so a copied image scores exactly 0 and memory stays small.
    out = np.empty(len(queries))
    for start in range(0, len(queries), block):
        q = queries[start : start + block].astype(np.float64) / 255.0
        w = np.asarray(winners[start : start + block]).astype(np.float64) / 255.0
        out[start : start + block] = np.sqrt(np.mean((q - w).reshape(len(q), -1) ** 2, axis=1))
    return out


@torch.no_grad()
def nearest_neighbours(
    queries: np.ndarray,
    references: np.ndarray,
    chunk: int | None = None,
    rows: np.ndarray | None = None,
    device: torch.device | None = None,
) -> Neighbours:
    """Nearest reference image (by RMS pixel distance) of each query; uint8 arrays (N, H, W, 3).

    Only the references at the sorted indices `rows` are searched (all when None). `references`
    may be memory-mapped: it is read `chunk` images at a time and turned to float32 on `device`
    chunk by chunk, so a large training set is never held whole, as float or at all.
    """
    device = device or torch.device("cpu")
    if queries.shape[1:] != references.shape[1:]:
        raise ValueError(f"image shapes differ: {queries.shape[1:]} vs {references.shape[1:]}")
    searched = len(references) if rows is None else len(rows)
    if searched == 0:
        raise ValueError("no reference images to compare with")
    chunk = chunk or default_chunk(references.shape[1:])
    q = _flat(queries, device)
    best = torch.full((len(q),), float("inf"), device=device)
    best_index = torch.zeros(len(q), dtype=torch.long, device=device)
    for start in range(0, searched, chunk):
        stop = min(start + chunk, searched)
        block = references[start:stop] if rows is None else references[rows[start:stop]]
        r = _flat(block, device)
        del block
        release_pages(references)
        d2 = torch.cdist(q, r).square_()  # the matrix-product form: fast, a little rounding near 0
        value, where = d2.min(dim=1)
        where = where + start if rows is None else torch.from_numpy(rows[start:stop]).to(device)[where]
        better = value < best
        best = torch.where(better, value, best)
        best_index = torch.where(better, where, best_index)
    index = best_index.cpu().numpy().astype(np.int64)
    # Recompute each winner's distance exactly (sorted reads of the memory map, then back in query order).
    order = np.argsort(index, kind="stable")
    winners = np.empty_like(queries)
    winners[order] = references[index[order]]
    return Neighbours(index=index, distance=_exact_distances(queries, winners))


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


def memorization(
    samples: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    rows: np.ndarray | None = None,
    device: torch.device | None = None,
) -> Memorization:
    """Nearest training image of every sample and test image, and the share of samples nearer than any test image.

    Only the training images at the sorted indices `rows` are searched (all when None); samples
    and test images see the same ones, so the threshold stays a fair yardstick.
    """
    if len(test) == 0:
        raise ValueError("memorization needs test images as the yardstick")
    # One pass over the training images serves both sets of queries.
    both = nearest_neighbours(np.concatenate([samples, np.asarray(test)]), train, rows=rows, device=device)
    n = len(samples)
    sample_nn = Neighbours(both.index[:n], both.distance[:n])
    test_nn = Neighbours(both.index[n:], both.distance[n:])
    threshold = float(np.min(test_nn.distance))
    share = float(np.mean(sample_nn.distance < threshold))
    return Memorization(samples=sample_nn, test=test_nn, threshold=threshold, memorized_share=share)


def score(inputs: EvalInputs) -> MetricResult:
    """Nearest training images of the samples and of (a seeded subset of) the test split, among a seeded
    subset of the training images; `details` is the Memorization for the report."""
    p = inputs.params
    train_rows = subset(len(inputs.train), p.nn_train_references, p.seed)
    test_rows = subset(len(inputs.test), p.nn_test_images, p.seed)
    log.info(
        "nearest training images of %d samples and %d of %d test images, among %d of %d training images",
        len(inputs.samples), len(test_rows), len(inputs.test), len(train_rows), len(inputs.train),
    )
    rows = None if len(train_rows) == len(inputs.train) else train_rows
    result = memorization(inputs.samples, inputs.train, inputs.test[test_rows], rows=rows, device=inputs.device)
    counts = {"nn_train_references": len(train_rows), "nn_test_images": len(test_rows)}
    return MetricResult({**result.metrics(), **counts}, details=result)
