"""Diversity as the mean MS-SSIM between random pairs of generated samples (lower is more diverse).

The ACGAN paper scores diversity this way on 128 px images with the standard five scales and an
11 px window. Five halvings of a 32 or 64 px image leave nothing for an 11 px window to slide
over, so here three scales and a 7 px Gaussian window (sigma 1.5) are used: the coarsest scale
of a 32 px image is 8 px, still wider than the window. The three weights are the first three
of the standard five, rescaled to sum to 1, so a pair of identical images still scores 1.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

from evaluate.metrics import EvalInputs, MetricResult

KERNEL_SIZE = 7
SIGMA = 1.5
_STANDARD_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
BETAS = tuple(b / sum(_STANDARD_BETAS[:3]) for b in _STANDARD_BETAS[:3])
MIN_SIDE = 32
# Pairs per batch: MS-SSIM's intermediate maps are many per pair, so small batches keep memory low.
PAIR_BATCH = 64


def sample_pairs(count: int, max_pairs: int, seed: int) -> np.ndarray:
    """Index pairs (P, 2), i < j: every pair when there are at most `max_pairs`, else that many distinct ones."""
    if count < 2:
        raise ValueError("diversity needs at least 2 images")
    total = count * (count - 1) // 2
    rng = np.random.default_rng(seed)
    if total <= max_pairs:
        first, second = np.triu_indices(count, k=1)
        return np.stack([first, second], axis=1)
    # Draw pair numbers without replacement, then map each number k to its (i, j) in the upper triangle.
    picks = np.sort(rng.choice(total, size=max_pairs, replace=False))
    starts = np.cumsum([0] + [count - 1 - i for i in range(count - 1)])  # first pair number of row i
    rows = np.searchsorted(starts, picks, side="right") - 1
    cols = picks - starts[rows] + rows + 1
    return np.stack([rows, cols], axis=1)


def pairwise_msssim(images_a: torch.Tensor, images_b: torch.Tensor) -> torch.Tensor:
    """MS-SSIM per pair of float images (N, 3, H, W) in [0, 1], H and W at least 32: one value in [0, 1] each."""
    if min(images_a.shape[-2:]) < MIN_SIDE:
        raise ValueError(f"MS-SSIM here needs images of at least {MIN_SIDE}x{MIN_SIDE}, got {tuple(images_a.shape[-2:])}")
    return multiscale_structural_similarity_index_measure(
        images_a,
        images_b,
        gaussian_kernel=True,
        sigma=SIGMA,
        kernel_size=KERNEL_SIZE,
        reduction="none",
        data_range=1.0,
        betas=BETAS,
        normalize="relu",  # negative contrast terms would make the fractional powers NaN
    )


def _as_float(images: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float() / 255.0


@torch.no_grad()
def mean_pairwise_msssim(
    images: np.ndarray, max_pairs: int, seed: int, batch_size: int = PAIR_BATCH, device: torch.device | None = None
) -> float:
    """Mean MS-SSIM over random pairs of uint8 images (N, H, W, 3); the pairs depend only on N, max_pairs, seed."""
    device = device or torch.device("cpu")
    pairs = sample_pairs(len(images), max_pairs, seed)
    total = 0.0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        scores = pairwise_msssim(_as_float(images[chunk[:, 0]], device), _as_float(images[chunk[:, 1]], device))
        total += float(scores.double().sum())
    return total / len(pairs)


def score(inputs: EvalInputs) -> MetricResult:
    """MS-SSIM diversity of the samples, and of (capped) test images as the yardstick."""
    p = inputs.params
    values = {"msssim": mean_pairwise_msssim(inputs.samples, p.msssim_pairs, p.seed, device=inputs.device)}
    if len(inputs.test_capped) < 2:
        return MetricResult(values, skipped=("msssim_test skipped: fewer than 2 test images",))
    values["msssim_test"] = mean_pairwise_msssim(inputs.test_capped, p.msssim_pairs, p.seed, device=inputs.device)
    return MetricResult(values)
