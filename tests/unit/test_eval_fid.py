"""FID/KID: the distances against direct scipy/numpy computations, and the Inception plumbing with random weights."""

import numpy as np
import pytest
import scipy.linalg
import torch

from anigan.errors import UserError
from anigan.params import load_params
from evaluate.metrics.fid_kid import (
    INCEPTION_WEIGHTS_FILE,
    INCEPTION_WEIGHTS_URL,
    frechet_distance,
    inception_features,
    kernel_inception_distance,
    load_inception,
    missing_weights_message,
)

CPU = torch.device("cpu")


def gaussian_features(seed, count, dim, shift=0.0, scale=1.0, shape_seed=None):
    """`count` draws of a correlated Gaussian; its covariance comes from `shape_seed` (default: `seed`)."""
    mixing = np.random.default_rng(seed if shape_seed is None else shape_seed).normal(size=(dim, dim)) * scale
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(count, dim)) @ mixing + shift)


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula: |mu_a - mu_b|^2 + tr(S_a + S_b - 2 sqrtm(S_a S_b))."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))


@pytest.mark.parametrize("dim, shift, scale", [(4, 0.0, 1.0), (16, 0.5, 2.0), (32, -1.0, 0.3)])
def test_frechet_distance_matches_a_direct_scipy_sqrtm_computation(dim, shift, scale):
    a = gaussian_features(1, 300, dim)
    b = gaussian_features(2, 250, dim, shift=shift, scale=scale)
    expected = scipy_frechet(a.numpy(), b.numpy())
    assert expected > 0.1
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_is_zero_for_one_set_and_the_squared_shift_for_a_moved_copy():
    a = gaussian_features(3, 200, 8)
    shift = torch.tensor([1.0, -2.0, 0, 0, 0.5, 0, 0, 0], dtype=a.dtype)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift.square().sum()), rel=1e-6)


def test_frechet_distance_needs_two_vectors_per_side():
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(torch.zeros(1, 4), torch.zeros(5, 4))


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    a, b = gaussian_features(4, 120, 8, shape_seed=0), gaussian_features(5, 120, 8, shape_seed=0)
    same, _ = kernel_inception_distance(a, b, 20, 50, seed=0)
    moved, _ = kernel_inception_distance(a, b + 3.0, 20, 50, seed=0)
    assert abs(same) < 0.05 * moved
    assert moved > 0


def test_kid_is_deterministic_given_the_seed_and_caps_its_subset_size():
    a, b = gaussian_features(6, 30, 8), gaussian_features(7, 20, 8, shift=1.0)
    first = kernel_inception_distance(a, b, subsets=10, subset_size=1000, seed=3)  # 1000 > 20: capped
    assert first == kernel_inception_distance(a, b, subsets=10, subset_size=1000, seed=3)
    assert first != kernel_inception_distance(a, b, subsets=10, subset_size=15, seed=4)


def test_the_default_weights_param_names_the_file_torch_fidelity_loads():
    assert load_params(None).evaluate.inception_weights.endswith(INCEPTION_WEIGHTS_FILE)
    assert INCEPTION_WEIGHTS_URL.endswith("/" + INCEPTION_WEIGHTS_FILE)


def test_missing_weights_is_one_line_naming_the_file_and_where_to_get_it(tmp_path):
    missing = tmp_path / "models" / INCEPTION_WEIGHTS_FILE
    message = missing_weights_message(missing)
    assert "\n" not in message and str(missing) in message and INCEPTION_WEIGHTS_URL in message
    with pytest.raises(UserError, match="FID/KID skipped: no Inception weights"):
        load_inception(missing, CPU)


@pytest.mark.parametrize("content", [b"not a torch file", None])
def test_a_file_that_is_not_the_inception_weights_is_a_user_error(tmp_path, content):
    path = tmp_path / "weights.pth"
    if content is None:
        torch.save({"fc.weight": torch.zeros(3, 3)}, path)  # some other network's weights
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match="not torch-fidelity's Inception weights"):
        load_inception(path, CPU)


@pytest.fixture(scope="module")
def random_inception(random_inception_weights):
    return load_inception(random_inception_weights, CPU)


def test_features_from_a_weights_file_are_pool3_vectors_independent_of_the_batching(random_inception):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    images[2] = images[0]  # the same image again, in the second batch
    features = inception_features(random_inception, images, batch_size=2, device=CPU)
    assert features.shape == (3, 2048) and features.dtype == torch.float32
    assert torch.isfinite(features).all() and features.std() > 0
    torch.testing.assert_close(features[0], features[2], rtol=1e-4, atol=1e-6)
    assert not torch.allclose(features[0], features[1])
