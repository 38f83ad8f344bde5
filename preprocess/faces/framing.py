"""One face's crop: where it lies in the source (a 2x3 transform), its pixels, its quality measures.

The glue between detection and the saved crop, kept apart from the worker so the stage and the
benchmarks frame faces the same way:

- with `faces.align` and eye positions, the crop is the eye-aligned one (align.py);
- otherwise it is the square crop of crop.py, as before alignment existed, its transform recorded
  all the same, so every crop traces back to the source pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from preprocess.faces import align, filters
from preprocess.faces.crop import cut_square

Point = tuple[float, float]
TRANSFORM_DIGITS = 6  # decimals kept: well under a hundredth of a pixel across a 256 px crop


@dataclass(frozen=True)
class Framing:
    transform: align.Matrix  # source pixel -> crop pixel, at faces.size
    aligned_by: str  # "eyes" (the detector's), "eyes_in_box" (animeface run again in the box) or "none"


def frame_face(box: Sequence[int], crop: Sequence[int], eyes: tuple[Point, Point] | None, eyes_from: str, margin: float, size: int) -> Framing:
    """The face's transform: eye-aligned when `eyes` are given, else the square `crop` resized."""
    if eyes is None:
        matrix, by = align.crop_transform(crop, size), "none"
    else:
        matrix, by = align.eye_transform(eyes, max(box[2], box[3]), margin, size), eyes_from
    # Rounded before use, so the manifest's copy is exactly the transform the crop was cut with.
    return Framing([[round(v, TRANSFORM_DIGITS) for v in row] for row in matrix], by)


def cut_face(image: Image.Image, crop: Sequence[int], framing: Framing, size: int) -> Image.Image:
    """The crop's pixels: resampled once along the transform (aligned) or as crop.py always cut them."""
    if framing.aligned_by == "none":
        return cut_square(image, crop, size)
    return align.cut(image, framing.transform, size)


def measure_face(image: Image.Image, box: Sequence[int], framing: Framing, margin: float, size: int) -> filters.FaceMeasures:
    """What the quality filters judge: upscale, share cut off by the edge, colour, sharpness."""
    side = filters.MEASURE_SIDE
    small = np.asarray(align.cut(image, align.rescaled(framing.transform, size, side), side))
    if framing.aligned_by == "none":
        cut_off = filters.box_cut_off(box, margin, image.size)
    else:
        cut_off = align.outside_share(framing.transform, size, image.size)
    return filters.measure(small, align.scale_of(framing.transform), cut_off)
