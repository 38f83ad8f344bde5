"""FID and KID with torch-fidelity's Inception network and the published FID weights, read from a local file.

The network (torch-fidelity's FeatureExtractorInceptionV3, a port of the TensorFlow graph
used by the original FID code, resizing included) and the distance formulas come from
torch-fidelity; this module only feeds it uint8 images in batches and never downloads.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import numpy as np
import torch
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

from anigan.errors import UserError
from evaluate.metrics import EvalInputs, MetricResult, subset

log = logging.getLogger(__name__)

# The file torch-fidelity publishes (converted from the TensorFlow FID graph); its name ends in
# the first digits of its sha256.
INCEPTION_WEIGHTS_URL = URL_INCEPTION_V3
INCEPTION_WEIGHTS_FILE = INCEPTION_WEIGHTS_URL.rsplit("/", 1)[-1]
FEATURE_LAYER = "2048"  # the pool3 features FID and KID are defined on


def missing_weights_message(path: str | os.PathLike) -> str:
    """The one line printed when FID/KID are skipped: which file, and where to get it."""
    return (
        f"FID/KID skipped: no Inception weights at {path}; download {INCEPTION_WEIGHTS_URL} "
        f"there (or set evaluate.inception_weights to where you keep it)"
    )


def load_inception(weights_path: str | os.PathLike, device: torch.device) -> FeatureExtractorInceptionV3:
    """torch-fidelity's Inception v3 with the weights in `weights_path`, in eval mode on `device`."""
    path = Path(weights_path)
    if not path.is_file():
        raise UserError(missing_weights_message(path))
    try:
        # torch-fidelity unpickles the file with weights_only=False, which would run any code a
        # tampered file carries; reading it first with weights_only=True refuses such a file.
        torch.load(path, map_location="cpu", weights_only=True)
        network = FeatureExtractorInceptionV3(
            "inception-v3-compat", [FEATURE_LAYER], feature_extractor_weights_path=str(path)
        )
    except (RuntimeError, OSError, EOFError, KeyError, ValueError, pickle.UnpicklingError) as e:
        # A truncated download or another network's weights (pytorch-fid's file has other key names).
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"{path}: not torch-fidelity's Inception weights ({reason}); download {INCEPTION_WEIGHTS_URL}"
        ) from None
    return network.to(device)


@torch.no_grad()
def inception_features(
    network: FeatureExtractorInceptionV3, images: np.ndarray, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Pool3 features (N, 2048) float32 on the CPU of uint8 images (N, H, W, 3); the network resizes to 299."""
    parts = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.array(images[start : start + batch_size], copy=True))  # memmaps are read-only
        batch = batch.permute(0, 3, 1, 2).to(device)
        (features,) = network(batch)
        parts.append(features.to("cpu", torch.float32))
    return torch.cat(parts) if parts else torch.empty(0, 2048)


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D): the FID when D is pool3."""
    if len(features_a) < 2 or len(features_b) < 2:
        raise ValueError("the Frechet distance needs at least 2 feature vectors on each side")
    stats_a = fid_features_to_statistics(features_a.cpu())
    stats_b = fid_features_to_statistics(features_b.cpu())
    return float(fid_statistics_to_metric(stats_a, stats_b, verbose=False)[KEY_METRIC_FID])


def kernel_inception_distance(
    features_a: torch.Tensor, features_b: torch.Tensor, subsets: int, subset_size: int, seed: int
) -> tuple[float, float]:
    """KID (mean, std over `subsets` random subsets); the subset size is capped at the smaller set."""
    size = min(subset_size, len(features_a), len(features_b))
    if size < 2:
        raise ValueError("KID needs at least 2 feature vectors on each side")
    out = kid_features_to_metric(
        features_a.cpu(),
        features_b.cpu(),
        kid_subsets=subsets,
        kid_subset_size=size,
        rng_seed=seed,
        verbose=False,
    )
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])


def score(inputs: EvalInputs) -> MetricResult:
    """FID and KID of the samples against the test split, at most `real_test_images` of it (skipped without the weights file)."""
    p = inputs.params
    if not Path(p.inception_weights).is_file():
        return MetricResult({}, skipped=(missing_weights_message(p.inception_weights),))
    if len(inputs.test) < 2:
        return MetricResult({}, skipped=(f"FID/KID skipped: they need at least 2 test images, {inputs.dataset / 'test.npy'} has {len(inputs.test)}",))
    # A seeded subset of a large test split: Inception is the slowest network evaluate runs.
    test = inputs.test[subset(len(inputs.test), p.real_test_images, p.seed)]
    network = load_inception(p.inception_weights, inputs.device)
    log.info("Inception features of %d samples and %d test images", len(inputs.samples), len(test))
    fake = inception_features(network, inputs.samples, p.batch_size, inputs.device)
    real = inception_features(network, test, p.batch_size, inputs.device)
    kid, kid_std = kernel_inception_distance(fake, real, p.kid_subsets, p.kid_subset_size, p.seed)
    return MetricResult({"fid": frechet_distance(fake, real), "kid": kid, "kid_std": kid_std})
