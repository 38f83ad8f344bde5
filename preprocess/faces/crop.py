"""Square crops around detected faces: margin, what happens at the image border, resize.

Boxes and crops are integer [x, y, w, h] in source-image pixels. Border modes (`faces.border`):

- `skip`: a crop that would reach past the image edge is not made (the face is rejected).
- `pad`: the crop keeps its place and size; pixels outside the image repeat the nearest edge pixel
  ("replicate"). Replicated edges were chosen over a constant colour so the generator does not
  learn black or white bars as part of a face.
- `shift`: the crop is moved inside the image, keeping its size; when the image is smaller than
  the crop on some side, the crop shrinks to the image's shorter side first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

Box = tuple[int, int, int, int]

BORDER_MODES = ("skip", "pad", "shift")


def square_crop(box: Sequence[int], margin: float, image_size: tuple[int, int], border: str) -> Box | None:
    """The square crop around `box` with `margin` (a share of the box's longer side) on each side.

    Returns None when `border` is "skip" and the crop would leave the image.
    """
    if border not in BORDER_MODES:
        raise ValueError(f"border must be one of {BORDER_MODES}, got {border!r}")
    x, y, w, h = (int(v) for v in box)
    width, height = image_size
    side = max(1, round(max(w, h) * (1 + 2 * margin)))
    left = round(x + w / 2 - side / 2)
    top = round(y + h / 2 - side / 2)
    inside = left >= 0 and top >= 0 and left + side <= width and top + side <= height
    if inside or border == "pad":
        return (left, top, side, side)
    if border == "skip":
        return None
    side = min(side, width, height)
    left = min(max(left, 0), width - side)
    top = min(max(top, 0), height - side)
    return (left, top, side, side)


def cut_square(image: Image.Image, crop: Sequence[int], size: int) -> Image.Image:
    """Cut `crop` out of an RGB image (replicating edge pixels outside it) and resize to size x size."""
    left, top, side, _ = (int(v) for v in crop)
    width, height = image.size
    inner = (max(left, 0), max(top, 0), min(left + side, width), min(top + side, height))
    if inner[0] >= inner[2] or inner[1] >= inner[3]:
        raise ValueError(f"crop {tuple(crop)} does not overlap the {width}x{height} image")
    piece = image.crop(inner)
    if inner != (left, top, left + side, top + side):
        pixels = np.asarray(piece)
        pad = ((inner[1] - top, top + side - inner[3]), (inner[0] - left, left + side - inner[2]), (0, 0))
        piece = Image.fromarray(np.pad(pixels, pad, mode="edge"))
    if piece.size != (size, size):
        piece = piece.resize((size, size), Image.Resampling.LANCZOS)
    return piece
