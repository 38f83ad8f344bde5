"""Memorization: nearest training images by RMS pixel distance, and the share of samples nearer than any test image."""

import tracemalloc

import numpy as np
import pytest

from evaluate.metrics import subset
from evaluate.metrics.memorization import CHUNK_BYTES, default_chunk, memorization, nearest_neighbours


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


@pytest.mark.parametrize("chunk", [1, 4, 2048])
def test_only_the_chosen_reference_rows_are_searched_and_indices_point_into_the_whole_set(chunk):
    queries, references = random_images(6, 9), random_images(7, 40)
    rows = subset(len(references), 15, seed=3)
    index, distance = brute_force(queries, references[rows])
    found = nearest_neighbours(queries, references, chunk=chunk, rows=rows)
    np.testing.assert_array_equal(found.index, rows[index])
    np.testing.assert_allclose(found.distance, distance, rtol=1e-12)


def test_a_memory_mapped_training_set_is_streamed_in_chunks_never_held_whole(tmp_path):
    references = random_images(8, 4000, side=16)  # 3 MB of uint8, 12 MB as float
    np.save(tmp_path / "train.npy", references)
    mapped = np.load(tmp_path / "train.npy", mmap_mode="r")
    queries = references[[5, 3999]]
    tracemalloc.start()
    try:
        found = nearest_neighbours(queries, mapped, chunk=200)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found.index.tolist() == [5, 3999] and found.distance.tolist() == [0.0, 0.0]
    assert peak < references.nbytes / 4  # a few chunks at most, not the set


def test_chunks_hold_a_bounded_number_of_float_bytes_whatever_the_image_size():
    for side in (32, 64, 128):
        float_bytes = side * side * 3 * 4
        assert default_chunk((side, side, 3)) * float_bytes <= CHUNK_BYTES < (default_chunk((side, side, 3)) + 1) * float_bytes


def test_samples_and_test_images_are_measured_against_the_same_reference_subset():
    train, test = random_images(9, 60), random_images(10, 12)
    samples = np.concatenate([train[[7]], random_images(11, 5)])
    rows = subset(len(train), 20, seed=0)
    result = memorization(samples, train, test, rows=rows)
    expected = memorization(samples, train[rows], test)
    np.testing.assert_allclose(result.samples.distance, expected.samples.distance, rtol=1e-12)
    assert result.threshold == expected.threshold and result.memorized_share == expected.memorized_share
    assert set(result.samples.index) <= set(rows)
