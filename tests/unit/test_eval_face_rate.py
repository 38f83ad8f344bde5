"""Face rate: animeface on small images, upscaled first."""

import math

import numpy as np
import pytest

from evaluate.metrics.face_rate import face_found, face_rate, upscale


def demo_face(side):
    """The demo booru's self-check portrait, cut and shrunk to `side` px as the faces stage would crop it."""
    from crawler.demo.drawing import face_box
    from crawler.demo.generator import portrait
    from preprocess.faces.crop import cut_square, square_crop

    picture = portrait(seed=0, size=320)  # drawn at centre (160, 0.48 * 320), radius 0.25 * 320
    crop = square_crop(face_box(160, 0.48 * 320, 0.25 * 320), 0.25, picture.size, "shift")
    return np.asarray(cut_square(picture, crop, side))


def test_small_images_are_upscaled_to_the_side_and_large_ones_kept():
    assert upscale(np.zeros((32, 32, 3), np.uint8), 128).size == (128, 128)
    assert upscale(np.zeros((32, 64, 3), np.uint8), 128).size == (256, 128)
    assert upscale(np.zeros((200, 200, 3), np.uint8), 128).size == (200, 200)


@pytest.mark.parametrize("side", [32, 64])
def test_a_small_drawn_face_is_found_once_upscaled_and_a_flat_image_is_not(side):
    face, flat = demo_face(side), np.full((side, side, 3), 200, np.uint8)
    assert face_found(np.stack([face, flat, face]), 128).tolist() == [True, False, True]
    assert face_rate(np.stack([face, flat, flat, flat]), 128) == 0.25


def test_upscaling_is_what_makes_a_32_px_face_visible():
    assert not face_found(demo_face(32)[None], 32)[0]


def test_an_empty_set_has_no_rate():
    assert math.isnan(face_rate(np.zeros((0, 32, 32, 3), np.uint8), 128))
