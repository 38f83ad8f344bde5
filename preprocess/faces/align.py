"""Face alignment: a similarity transform that puts the eyes level at fixed places in the crop.

The FFHQ idea: rotate and scale every face so its eyes land on the same two points of the crop,
so a generator spends its capacity on faces rather than on head tilts and framing. The crop is
resampled once, straight from the source image, and the 2x3 matrix that maps source pixels to
crop pixels is kept in the manifest, so every crop pixel can be traced back to the source.

Coordinates follow OpenCV: a pixel's centre is at integer (x, y). The matrix maps a source point
(x, y, 1) to the crop point (u, v); `cut` fills the crop by sampling the source at the inverse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

Point = tuple[float, float]
Matrix = list[list[float]]  # 2x3, JSON-able

# Where an upright face's eyes sit in animeface's box: their span as a share of the box side, and
# the height of their midpoint below the box top. Aligned crops put the eyes there (with the
# margin added around the box, as unaligned crops do), so an average face is framed as before.
EYE_SPAN = 0.51
EYE_HEIGHT = 0.37
# A face turned far sideways shows its eyes close together, and a wrong eye found on the hair far
# apart; scaling by such a span would zoom in or out wildly, so it is held within these shares
# of the box side.
SPAN_LIMITS = (0.35, 0.7)


def eye_places(margin: float, size: int) -> tuple[Point, Point]:
    """Where the image-left and image-right eye land in a size x size crop with `margin`."""
    side = 1 + 2 * margin
    half = EYE_SPAN / 2 / side * size
    v = (margin + EYE_HEIGHT) / side * size
    return (size / 2 - half, v), (size / 2 + half, v)


def eye_transform(eyes: tuple[Point, Point], box_side: float, margin: float, size: int) -> Matrix:
    """The similarity transform (rotation, uniform scale, shift) taking both eyes to `eye_places`.

    `eyes` are the image-left and image-right eye centres in source pixels. Their span, held within
    SPAN_LIMITS of `box_side`, sets the scale; the angle between them is undone.
    """
    (lx, ly), (rx, ry) = eyes
    dx, dy = rx - lx, ry - ly
    span = math.hypot(dx, dy)
    low, high = SPAN_LIMITS[0] * box_side, SPAN_LIMITS[1] * box_side
    span_used = min(max(span, low), high)
    (pl, pr) = eye_places(margin, size)
    scale = (pr[0] - pl[0]) / span_used
    angle = math.atan2(dy, dx)
    cos, sin = scale * math.cos(-angle), scale * math.sin(-angle)
    mx, my = (lx + rx) / 2, (ly + ry) / 2
    tx, ty = (pl[0] + pr[0]) / 2, pl[1]
    return [[cos, -sin, tx - cos * mx + sin * my], [sin, cos, ty - sin * mx - cos * my]]


def crop_transform(crop: Sequence[int], size: int) -> Matrix:
    """The transform of an unaligned square crop [left, top, side, side] resized to size x size.

    Pixel centres map onto pixel centres, as a resize does: source pixel `left` lands half a crop
    pixel in from the crop's edge once scaled.
    """
    left, top, side, _ = (float(v) for v in crop)
    s = size / side
    off = 0.5 * (s - 1)
    return [[s, 0.0, off - s * left], [0.0, s, off - s * top]]


def scale_of(matrix: Matrix) -> float:
    """Crop pixels per source pixel."""
    return math.hypot(matrix[0][0], matrix[1][0])


def inverse(matrix: Matrix) -> Matrix:
    """The transform from crop pixels back to source pixels."""
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64)).tolist()


def apply(matrix: Matrix, points: Sequence[Point]) -> list[Point]:
    m = np.asarray(matrix, np.float64)
    return [(float(m[0, 0] * x + m[0, 1] * y + m[0, 2]), float(m[1, 0] * x + m[1, 1] * y + m[1, 2])) for x, y in points]


def source_corners(matrix: Matrix, size: int) -> list[Point]:
    """The crop's four corners in source pixels (a rotated square for an aligned crop)."""
    edge = size - 0.5
    return apply(inverse(matrix), [(-0.5, -0.5), (edge, -0.5), (edge, edge), (-0.5, edge)])


def outside_share(matrix: Matrix, size: int, image_size: tuple[int, int], grid: int = 32) -> float:
    """The share of the crop whose source pixels lie outside the image (sampled on a grid)."""
    steps = (np.arange(grid) + 0.5) * size / grid - 0.5
    u, v = np.meshgrid(steps, steps)
    inv = np.asarray(inverse(matrix))
    x = inv[0, 0] * u + inv[0, 1] * v + inv[0, 2]
    y = inv[1, 0] * u + inv[1, 1] * v + inv[1, 2]
    width, height = image_size
    outside = (x < -0.5) | (y < -0.5) | (x > width - 0.5) | (y > height - 0.5)
    return float(outside.mean())


def cut(image: Image.Image, matrix: Matrix, size: int) -> Image.Image:
    """The size x size crop the transform describes, resampled once from the RGB source.

    Shrinking by a large factor with a plain warp would alias (stair steps on lines), so the part
    of the source under the crop is first smoothed by as much as the shrink discards; pixels
    outside the image repeat the nearest edge pixel, as `faces.border: pad` does.
    """
    m = np.asarray(matrix, np.float64)
    pixels = np.asarray(image)
    height, width = pixels.shape[:2]
    shrink = 1.0 / scale_of(matrix)
    sigma = 0.5 * math.sqrt(shrink * shrink - 1) if shrink > 1 else 0.0
    corners = np.asarray(source_corners(matrix, size))
    reach = math.ceil(3 * sigma) + 2
    x0 = int(max(0, math.floor(corners[:, 0].min()) - reach))
    y0 = int(max(0, math.floor(corners[:, 1].min()) - reach))
    x1 = int(min(width, math.ceil(corners[:, 0].max()) + reach + 1))
    y1 = int(min(height, math.ceil(corners[:, 1].max()) + reach + 1))
    if x0 >= x1 or y0 >= y1:
        raise ValueError("the crop does not overlap the image")
    region = np.ascontiguousarray(pixels[y0:y1, x0:x1])
    if sigma > 0:
        region = cv2.GaussianBlur(region, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE)
    local = m.copy()
    local[:, 2] += local[:, 0] * x0 + local[:, 1] * y0  # the region's (0, 0) is the source's (x0, y0)
    out = cv2.warpAffine(region, local, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return Image.fromarray(out)


def rescaled(matrix: Matrix, size: int, new_size: int) -> Matrix:
    """The same crop at another side length (pixel centres kept on pixel centres)."""
    k = new_size / size
    off = 0.5 * (k - 1)
    return [[k * a for a in row[:2]] + [k * row[2] + off] for row in matrix]
