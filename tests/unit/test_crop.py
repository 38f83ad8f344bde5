"""Square crops: margin, the three border modes, and edge replication when padding."""

import numpy as np
import pytest
from PIL import Image

from preprocess.faces.crop import cut_square, square_crop


def test_crop_is_square_centred_and_grows_with_the_margin():
    assert square_crop((100, 100, 40, 40), 0.0, (400, 400), "skip") == (100, 100, 40, 40)
    assert square_crop((100, 100, 40, 40), 0.25, (400, 400), "skip") == (90, 90, 60, 60)
    # a tall box: the square follows the longer side and stays centred
    assert square_crop((100, 100, 20, 40), 0.0, (400, 400), "skip") == (90, 100, 40, 40)


@pytest.mark.parametrize("border", ["skip", "pad", "shift"])
def test_a_crop_inside_the_image_is_the_same_in_every_mode(border):
    assert square_crop((50, 60, 30, 30), 0.5, (200, 200), border) == (35, 45, 60, 60)


def test_skip_refuses_a_crop_past_the_edge():
    assert square_crop((0, 10, 40, 40), 0.25, (200, 200), "skip") is None
    assert square_crop((170, 170, 30, 30), 0.25, (200, 200), "skip") is None


def test_pad_keeps_the_crop_where_it_is():
    assert square_crop((0, 10, 40, 40), 0.25, (200, 200), "pad") == (-10, 0, 60, 60)


def test_shift_moves_the_crop_inside_and_keeps_the_face_in_it():
    crop = square_crop((170, 0, 30, 30), 0.5, (200, 200), "shift")
    assert crop == (140, 0, 60, 60)
    x, y, w, h = crop
    assert x <= 170 and x + w >= 200 and y <= 0 and y + h >= 30


def test_shift_shrinks_a_crop_larger_than_the_image():
    assert square_crop((10, 10, 80, 60), 0.5, (100, 70), "shift") == (0, 0, 70, 70)


def test_unknown_border_mode_is_refused():
    with pytest.raises(ValueError, match="border"):
        square_crop((0, 0, 10, 10), 0.1, (100, 100), "wrap")


def test_cut_square_resizes_to_the_output_size():
    image = Image.new("RGB", (300, 200), (10, 20, 30))
    out = cut_square(image, (50, 50, 100, 100), 64)
    assert out.size == (64, 64) and out.mode == "RGB" and out.getpixel((5, 5)) == (10, 20, 30)


def test_padding_replicates_the_edge_pixels():
    a = np.zeros((20, 20, 3), np.uint8)
    a[:, 0] = (200, 0, 0)  # left column red
    a[0, :] = (0, 200, 0)  # top row green (wins at the corner)
    out = np.asarray(cut_square(Image.fromarray(a), (-5, -5, 20, 20), 20))
    assert (out[:5, 6:] == (0, 200, 0)).all(), "rows above the image repeat the top row"
    assert (out[6:, :5] == (200, 0, 0)).all(), "columns left of the image repeat the left column"
    assert (out[5:, 5:] == a[:15, :15]).all(), "the part inside the image is unchanged"


def test_a_crop_outside_the_image_is_an_error():
    with pytest.raises(ValueError, match="does not overlap"):
        cut_square(Image.new("RGB", (10, 10)), (20, 20, 5, 5), 8)
