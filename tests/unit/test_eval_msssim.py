"""MS-SSIM diversity: pair sampling, the window fitting 32 and 64 px, and the ordering it should give."""

import numpy as np
import pytest
import torch

from evaluate.metrics.msssim import BETAS, mean_pairwise_msssim, pairwise_msssim, sample_pairs


def as_set(pairs):
    return {tuple(int(v) for v in p) for p in pairs}


def test_every_pair_is_used_when_there_are_few():
    pairs = sample_pairs(5, 100, seed=0)
    assert as_set(pairs) == {(i, j) for i in range(5) for j in range(i + 1, 5)} and len(pairs) == 10


@pytest.mark.parametrize("count, max_pairs", [(3, 2), (40, 100), (300, 1000)])
def test_sampled_pairs_are_distinct_ordered_and_in_range(count, max_pairs):
    pairs = sample_pairs(count, max_pairs, seed=1)
    assert len(pairs) == max_pairs == len(as_set(pairs))
    assert (pairs[:, 0] < pairs[:, 1]).all() and pairs.min() >= 0 and pairs.max() < count


def test_pairs_depend_only_on_count_max_pairs_and_seed():
    assert as_set(sample_pairs(50, 30, seed=2)) == as_set(sample_pairs(50, 30, seed=2))
    assert as_set(sample_pairs(50, 30, seed=2)) != as_set(sample_pairs(50, 30, seed=3))


def test_scale_weights_sum_to_one_so_identical_images_score_one():
    assert sum(BETAS) == pytest.approx(1.0)


@pytest.mark.parametrize("side", [32, 64, 128])
def test_identical_images_score_one_and_unrelated_noise_scores_low(side):
    a = torch.rand(4, 3, side, side, generator=torch.Generator().manual_seed(side))
    b = torch.rand(4, 3, side, side, generator=torch.Generator().manual_seed(side + 1))
    torch.testing.assert_close(pairwise_msssim(a, a), torch.ones(4), rtol=0, atol=1e-5)
    assert (pairwise_msssim(a, b) < 0.2).all()


def test_images_smaller_than_the_window_allows_are_refused():
    a = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="at least 32x32"):
        pairwise_msssim(a, a)


def test_near_copies_score_less_diverse_than_varied_images():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (1, 64, 64, 3))
    copies = np.clip(base + rng.integers(-10, 11, (12, 64, 64, 3)), 0, 255).astype(np.uint8)
    varied = rng.integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)
    assert mean_pairwise_msssim(np.repeat(copies[:1], 3, axis=0), 10, seed=0) == pytest.approx(1.0, abs=1e-5)
    assert mean_pairwise_msssim(copies, 30, seed=0) > 0.8 > 0.2 > mean_pairwise_msssim(varied, 30, seed=0)


def test_the_mean_does_not_depend_on_the_batch_size():
    images = np.random.default_rng(1).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    assert mean_pairwise_msssim(images, 20, seed=0, batch_size=7) == pytest.approx(mean_pairwise_msssim(images, 20, seed=0, batch_size=64), rel=1e-6)
