"""Face rate: the share of images in which animeface finds a face, a quality score for this domain.

animeface looks for eyes, a chin and hair at sizes of tens of pixels, so small images (32 or
64 px) are first upscaled; the same upscaling is applied to real and generated images so the
two rates compare. The size matters both ways: too small and animeface misses the face, too
large and a blurred face is not found either. The default of 128 sits where demo crops are
found best (docs/evaluate.md has the measurements).
"""

from __future__ import annotations

import copy
import logging

import animeface
import numpy as np
import torch
from PIL import Image

from evaluate.metrics import EvalInputs, MetricResult
from gan.models import init_weights
from gan.samples import generate


def upscale(image: np.ndarray, side: int) -> Image.Image:
    """A uint8 (H, W, 3) array as an RGB PIL image of at least `side` px on its short edge (bicubic)."""
    picture = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).convert("RGB")
    short = min(picture.size)
    if short >= side:
        return picture
    scale = side / short
    return picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.Resampling.BICUBIC)


def has_face(image: np.ndarray, side: int) -> bool:
    """Whether animeface finds at least one face in a uint8 (H, W, 3) image upscaled to `side`."""
    return len(animeface.detect(upscale(image, side))) > 0


def face_found(images: np.ndarray, side: int) -> np.ndarray:
    """One bool per uint8 image (N, H, W, 3): did animeface find a face in it."""
    return np.array([has_face(image, side) for image in images], dtype=bool)


def face_rate(images: np.ndarray, side: int) -> float:
    """Share of images (N, H, W, 3) with a face found; NaN for an empty set."""
    if len(images) == 0:
        return float("nan")
    return float(face_found(images, side).mean())


log = logging.getLogger(__name__)


def untrained_copy(generator: torch.nn.Module, seed: int) -> torch.nn.Module:
    """The same network freshly initialised from `seed`: the baseline that shows whether training taught anything."""
    untrained = copy.deepcopy(generator)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in untrained.modules():
            if module is not untrained and hasattr(module, "reset_parameters"):
                module.reset_parameters()  # batch norm also forgets its running statistics
        init_weights(untrained)
    return untrained.eval()


def score(inputs: EvalInputs) -> MetricResult:
    """Face rate of the samples, of (capped) test images, and of the same noise through an untrained copy."""
    p = inputs.params
    log.info("face rate (animeface) on %d samples and %d test images", len(inputs.samples), len(inputs.test_capped))
    untrained = generate(untrained_copy(inputs.generator, p.seed), inputs.noise, inputs.device, p.batch_size, labels=inputs.labels)
    return MetricResult(
        {
            "face_rate": face_rate(inputs.samples, p.face_upscale),
            "face_rate_test": face_rate(inputs.test_capped, p.face_upscale),
            "face_rate_untrained": face_rate(untrained, p.face_upscale),
        }
    )
