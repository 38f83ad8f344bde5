"""Overfitting gap: the discriminator's mean logit on train reals minus test reals."""

import numpy as np
import pytest
import torch
from torch import nn

from evaluate.metrics import subset
from evaluate.metrics.overfitting import discriminator_scores, overfitting_gap

CPU = torch.device("cpu")


class MeanBrightness(nn.Module):
    """A stand-in discriminator whose logit is an image's mean value in [-1, 1]: easy to predict."""

    def forward(self, images):
        return images.mean(dim=(1, 2, 3))


def test_scores_see_images_scaled_to_minus_one_one_as_in_training():
    images = np.stack([np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)])
    np.testing.assert_allclose(discriminator_scores(MeanBrightness(), images, CPU, batch_size=1), [-1.0, 1.0])


def test_the_gap_is_train_minus_test():
    train = np.full((6, 4, 4, 3), 255, np.uint8)
    test = np.zeros((3, 4, 4, 3), np.uint8)
    gap = overfitting_gap(MeanBrightness(), train, test, CPU, batch_size=4, limit=100, seed=0)
    assert gap == {
        "d_logit_train": 1.0, "d_logit_test": -1.0, "d_overfit_gap": 2.0,
        "d_overfit_gap_stderr": 0.0, "d_gap_train_images": 6, "d_gap_test_images": 3,
    }  # fmt: skip


def test_a_large_split_is_scored_on_a_seeded_subset_whose_error_covers_the_full_answer(tmp_path):
    # Brightness spread over the whole range: the subset's mean is off the full mean by about its error.
    rng = np.random.default_rng(0)
    np.save(tmp_path / "train.npy", rng.integers(0, 256, (3000, 1, 1, 1), dtype=np.uint8).repeat(4, 1).repeat(4, 2).repeat(3, 3))
    train = np.load(tmp_path / "train.npy", mmap_mode="r")
    test = np.full((50, 4, 4, 3), 128, np.uint8)
    full = overfitting_gap(MeanBrightness(), train, test, CPU, batch_size=64, limit=3000, seed=0)
    sampled = overfitting_gap(MeanBrightness(), train, test, CPU, batch_size=64, limit=300, seed=0)
    assert sampled["d_gap_train_images"] == 300 and sampled["d_gap_test_images"] == 50 and full["d_gap_train_images"] == 3000
    assert sampled["d_overfit_gap_stderr"] > full["d_overfit_gap_stderr"] > 0
    assert abs(sampled["d_overfit_gap"] - full["d_overfit_gap"]) < 3 * sampled["d_overfit_gap_stderr"]
    assert sampled == overfitting_gap(MeanBrightness(), train, test, CPU, batch_size=7, limit=300, seed=0)


def test_subsets_are_seeded_sorted_and_everything_when_few():
    assert subset(5, 10, seed=0).tolist() == [0, 1, 2, 3, 4]
    picked = subset(100, 10, seed=1)
    assert len(set(picked.tolist())) == 10 and picked.tolist() == sorted(picked.tolist())
    assert picked.tolist() == subset(100, 10, seed=1).tolist() != subset(100, 10, seed=2).tolist()


def test_the_real_discriminator_scores_one_logit_per_image():
    from gan.models import build_models

    _, discriminator = build_models(nz=8, ngf=8, ndf=8, image_size=32, seed=0)
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    scores = discriminator_scores(discriminator.eval(), images, CPU, batch_size=2)
    assert scores.shape == (5,) and np.isfinite(scores).all()
    assert scores == pytest.approx(discriminator_scores(discriminator, images, CPU, batch_size=5))
