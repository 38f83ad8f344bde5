"""Memorization: nearest training images by RMS pixel distance, and the share of samples nearer than any test image."""

import numpy as np
import pytest

from evaluate.metrics.memorization import memorization, nearest_neighbours


def random_images(seed, count, side=8):
    return np.random.default_rng(seed).integers(0, 256, (count, side, side, 3), dtype=np.uint8)


def brute_force(queries, references):
    q = queries.reshape(len(queries), -1).astype(np.float64) / 255
    r = references.reshape(len(references), -1).astype(np.float64) / 255
    d = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).mean(axis=2))
    return d.argmin(axis=1), d.min(axis=1)


@pytest.mark.parametrize("chunk", [1, 3, 2048])
def test_nearest_neighbours_match_a_brute_force_search_whatever_the_chunk(chunk):
    queries, references = random_images(0, 7), random_images(1, 11)
    index, distance = brute_force(queries, references)
    found = nearest_neighbours(queries, references, chunk=chunk)
    np.testing.assert_array_equal(found.index, index)
    np.testing.assert_allclose(found.distance, distance, rtol=1e-12)


def test_a_copied_image_is_found_at_distance_exactly_zero_in_a_memory_mapped_set(tmp_path):
    references = random_images(2, 20)
    np.save(tmp_path / "train.npy", references)
    mapped = np.load(tmp_path / "train.npy", mmap_mode="r")
    found = nearest_neighbours(references[[13, 4]], mapped, chunk=6)
    assert found.index.tolist() == [13, 4] and found.distance.tolist() == [0.0, 0.0]


def test_shapes_must_agree_and_references_must_exist():
    with pytest.raises(ValueError, match="shapes differ"):
        nearest_neighbours(random_images(0, 2, side=8), random_images(1, 2, side=4))
    with pytest.raises(ValueError, match="no reference"):
        nearest_neighbours(random_images(0, 2), random_images(1, 0))


def test_samples_nearer_to_training_than_any_test_image_count_as_memorized():
    train, test = random_images(3, 30), random_images(4, 10)
    fresh = random_images(5, 6)
    samples = np.concatenate([train[[0, 1]], fresh])  # two copies of training images
    result = memorization(samples, train, test)
    _, test_distance = brute_force(test, train)
    assert result.threshold == pytest.approx(test_distance.min())
    expected = (brute_force(samples, train)[1] < test_distance.min()).mean()
    assert result.memorized_share == pytest.approx(expected)
    assert result.memorized_share >= 2 / 8
    metrics = result.metrics()
    assert metrics["nn_train_distance_min"] == 0.0 and metrics["test_nn_train_distance_min"] == result.threshold


def test_a_sample_exactly_at_the_threshold_is_not_counted():
    train = np.zeros((1, 4, 4, 3), np.uint8)
    test = np.full((1, 4, 4, 3), 10, np.uint8)
    samples = np.stack([np.full((4, 4, 3), 10, np.uint8), np.full((4, 4, 3), 9, np.uint8)])
    assert memorization(samples, train, test).memorized_share == 0.5
