"""Quality filters: faces a generator should not learn from, each dropped with a reason.

- `upscaled` (`faces.max_upscale`): the face's crop is smaller in the source than the saved crop
  by more than this factor; blowing it up would teach the generator blur.
- `blurry` (`faces.min_sharpness`): little fine detail for the face's contrast.
- `monochrome` (`faces.drop_monochrome`, `faces.min_chroma`): the source's tags say monochrome,
  greyscale, sketch or lineart, or (untagged) the crop has almost no colour.
- `cut_off` (`faces.max_cut_off`): too much of the crop lies beyond the image edge, so the face
  is only partly there.

Each measure is a pure function of the crop (or its geometry); `check_face` applies the params
in a fixed order (cheapest first) and returns the first reason to drop the face, or None.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from preprocess.faces.align import crop_transform, outside_share
from preprocess.faces.crop import square_crop

# Tags boorus put on art without colour; any of them drops a face when faces.drop_monochrome is on.
MONOCHROME_TAGS = frozenset({"monochrome", "greyscale", "grayscale", "sketch", "lineart"})
# Sharpness and colour are measured on the crop at this side, whatever faces.size is, so one
# threshold means the same at every crop size.
MEASURE_SIDE = 64
FILTER_REASONS = ("upscaled", "cut_off", "monochrome", "blurry")


@dataclass(frozen=True)
class FaceMeasures:
    """What the filters look at, kept in the manifest so thresholds can be chosen again later."""

    upscale: float  # saved crop side / the crop's side in source pixels
    cut_off: float  # share of the crop outside the image
    chroma: float  # colourfulness, 0 (grey) .. 1
    sharpness: float  # fine detail for the contrast

    def as_dict(self) -> dict:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


def monochrome_tags(tags: Iterable[str]) -> list[str]:
    """The source's tags that say it has no colour, sorted."""
    return sorted(MONOCHROME_TAGS.intersection(tags))


def chroma(rgb: np.ndarray) -> float:
    """How colourful a crop is: the 90th percentile of each pixel's max-min channel spread, 0..1.

    A high percentile, not the mean, because a coloured face may sit on a large grey background
    or wear grey clothes; the colour of hair, eyes and skin still shows in its top tenth.
    """
    px = rgb.reshape(-1, 3).astype(np.int16)
    spread = px.max(axis=1) - px.min(axis=1)
    return float(np.percentile(spread, 90)) / 255.0


def sharpness(rgb: np.ndarray) -> float:
    """Fine detail for the contrast: the Laplacian's spread over the gray image's spread.

    Dividing by the contrast keeps a pale, low-contrast drawing from reading as blurred; measuring
    at MEASURE_SIDE keeps it independent of the crop size.
    """
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float64) / 255.0
    contrast = gray.std()
    if contrast < 1e-3:
        return 0.0  # a flat patch has no detail at all
    return float(cv2.Laplacian(gray, cv2.CV_64F, ksize=1).std() / contrast)


def measure(rgb_small: np.ndarray, upscale: float, cut_off: float) -> FaceMeasures:
    """All measures of one face, from its crop at MEASURE_SIDE and its geometry."""
    return FaceMeasures(upscale=upscale, cut_off=cut_off, chroma=chroma(rgb_small), sharpness=sharpness(rgb_small))


def check_face(m: FaceMeasures, tags: Iterable[str], params) -> tuple[str, str] | None:
    """(reason, detail) for the first filter that drops the face, or None to keep it.

    `params` is FacesParams; a threshold of 0 (or max_cut_off 1) turns its filter off.
    """
    if params.max_upscale and m.upscale > params.max_upscale:
        return "upscaled", f"crop blown up {m.upscale:.2f}x > faces.max_upscale {params.max_upscale}"
    if params.max_cut_off < 1 and m.cut_off > params.max_cut_off:
        return "cut_off", f"{m.cut_off:.2f} of the crop beyond the image edge > faces.max_cut_off {params.max_cut_off}"
    if params.drop_monochrome:
        said = monochrome_tags(tags)
        if said:
            return "monochrome", f"tagged {', '.join(said)} (faces.drop_monochrome)"
        if m.chroma < params.min_chroma:
            return "monochrome", f"chroma {m.chroma:.3f} < faces.min_chroma {params.min_chroma}"
    if params.min_sharpness and m.sharpness < params.min_sharpness:
        return "blurry", f"sharpness {m.sharpness:.3f} < faces.min_sharpness {params.min_sharpness}"
    return None


def box_cut_off(box, margin: float, image_size: tuple[int, int]) -> float:
    """The share of the face's margin-expanded square that lies beyond the image edge.

    Measured before `faces.border` moves or pads the crop: a shifted crop stays inside the image,
    but the face in it is still cut off.
    """
    crop = square_crop(box, margin, image_size, "pad")
    return outside_share(crop_transform(crop, MEASURE_SIDE), MEASURE_SIDE, image_size)
