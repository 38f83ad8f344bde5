"""Alignment: eyes land level at fixed places, crops trace back to source pixels."""

import math

import numpy as np
import pytest
from PIL import Image

from preprocess.faces.align import apply, crop_transform, cut, eye_places, eye_transform, inverse, outside_share, rescaled, scale_of
from preprocess.faces.crop import cut_square


def _rotated_eyes(cx, cy, span, degrees):
    a = math.radians(degrees)
    dx, dy = span / 2 * math.cos(a), span / 2 * math.sin(a)
    return (cx - dx, cy - dy), (cx + dx, cy + dy)


@pytest.mark.parametrize("tilt", [-25.0, -8.0, 0.0, 13.0, 20.0])
def test_eyes_land_level_at_the_fixed_places_whatever_the_tilt(tilt):
    eyes = _rotated_eyes(300, 200, 60, tilt)
    m = eye_transform(eyes, box_side=120, margin=0.25, size=128)
    (lu, lv), (ru, rv) = apply(m, eyes)
    (pl, pr) = eye_places(0.25, 128)
    assert (lu, lv) == pytest.approx(pl, abs=1e-6)
    assert (ru, rv) == pytest.approx(pr, abs=1e-6)
    assert lv == pytest.approx(rv)


def test_scale_follows_the_eye_span_within_limits_of_the_box():
    normal = eye_transform(((100, 100), (160, 100)), box_side=120, margin=0.25, size=128)
    far_turned = eye_transform(((100, 100), (110, 100)), box_side=120, margin=0.25, size=128)  # eyes 10 px apart
    assert scale_of(far_turned) == pytest.approx(scale_of(normal) * 60 / (0.35 * 120))  # held at the lower limit


def test_inverse_takes_crop_points_back_to_the_source():
    m = eye_transform(_rotated_eyes(250, 180, 50, 17), box_side=100, margin=0.3, size=64)
    pts = [(0.0, 0.0), (63.0, 10.0), (31.5, 40.0)]
    assert np.allclose(apply(m, apply(inverse(m), pts)), pts)


def test_unaligned_transform_reproduces_the_square_crop_pixels():
    # a smooth image: resizers agree on it, so the transform's pixel convention can be checked
    y, x = np.mgrid[0:200, 0:300]
    pixels = np.stack([(x * 0.8) % 256, (y * 1.1) % 256, ((x + y) * 0.3) % 256], axis=-1).astype(np.uint8)
    image = Image.fromarray(pixels)
    crop = (40, 30, 128, 128)
    m = crop_transform(crop, 64)
    via_transform = np.asarray(cut(image, m, 64)).astype(int)
    via_resize = np.asarray(cut_square(image, crop, 64)).astype(int)
    assert np.abs(via_transform - via_resize).mean() < 2.0


def test_cut_samples_the_source_where_the_transform_says():
    # each source pixel's colour encodes its coordinates; a crop pixel must show the colour of the
    # source point its inverse transform names
    y, x = np.mgrid[0:256, 0:256]
    pixels = np.stack([x, y, np.zeros_like(x)], axis=-1).astype(np.uint8)
    m = eye_transform(_rotated_eyes(128, 120, 60, 15), box_side=110, margin=0.25, size=128)
    crop = np.asarray(cut(Image.fromarray(pixels), m, 128)).astype(float)
    for u, v in [(20, 30), (64, 64), (100, 90)]:
        ((sx, sy),) = apply(inverse(m), [(u, v)])
        assert crop[v, u, 0] == pytest.approx(sx, abs=1.0)
        assert crop[v, u, 1] == pytest.approx(sy, abs=1.0)


def test_shrinking_cut_is_smoothed_not_aliased():
    # a 1-px checkerboard shrunk 4x must average to grey, not alias into stripes
    board = ((np.indices((400, 400)).sum(axis=0) % 2) * 255).astype(np.uint8)
    image = Image.fromarray(np.stack([board] * 3, axis=-1))
    m = crop_transform((0, 0, 256, 256), 64)
    crop = np.asarray(cut(image, m, 64)).astype(float)
    assert crop[8:-8, 8:-8].std() < 10
    assert crop.mean() == pytest.approx(127.5, abs=10)


def test_outside_share_counts_the_part_beyond_the_edge():
    assert outside_share(crop_transform((0, 0, 100, 100), 64), 64, (200, 200)) == 0.0
    assert outside_share(crop_transform((-50, 0, 100, 100), 64), 64, (200, 200)) == pytest.approx(0.5, abs=0.02)
    assert outside_share(crop_transform((150, 150, 100, 100), 64), 64, (200, 200)) == pytest.approx(0.75, abs=0.02)


def test_rescaled_is_the_same_crop_at_another_size():
    m = eye_transform(_rotated_eyes(200, 150, 40, -10), box_side=90, margin=0.25, size=128)
    small = rescaled(m, 128, 64)
    corners128 = apply(inverse(m), [(-0.5, -0.5), (127.5, 127.5)])
    corners64 = apply(inverse(small), [(-0.5, -0.5), (63.5, 63.5)])
    assert np.allclose(corners64, corners128)
