"""Face rate: the share of images in which animeface finds a face, a quality score for this domain.

animeface looks for eyes, a chin and hair at sizes of tens of pixels, so small images (32 or
64 px) are first upscaled; the same upscaling is applied to real and generated images so the
two rates compare. The size matters both ways: on demo face crops as the faces stage cuts them
(the face about two thirds of the side), animeface finds 99% when 32 or 64 px crops are
upscaled to 96-128 px, but under 10% at 256 px (a blurred face that large is not found), and
32 px crops upscaled to 160 px already lose some. Hence the default of 128.
"""

from __future__ import annotations

import animeface
import numpy as np
from PIL import Image


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
