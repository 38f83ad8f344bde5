"""Quality filters: each measure moves the right way, each param drops with its reason."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from preprocess.faces.filters import FaceMeasures, box_cut_off, check_face, chroma, monochrome_tags, sharpness


def _drawing(seed=0, side=64):
    """A crude coloured drawing: flat shapes with hard edges, like anime art at crop size."""
    rng = np.random.default_rng(seed)
    img = np.full((side, side, 3), 230, np.uint8)
    for _ in range(8):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        centre = tuple(int(c) for c in rng.integers(0, side, 2))
        cv2.circle(img, centre, int(rng.integers(4, side // 3)), colour, -1)
        cv2.line(img, tuple(int(c) for c in rng.integers(0, side, 2)), tuple(int(c) for c in rng.integers(0, side, 2)), (20, 20, 20), 1)
    return img


def test_blur_lowers_sharpness_and_contrast_alone_does_not():
    img = _drawing()
    blurred = cv2.GaussianBlur(img, (0, 0), 2.0)
    faded = (img.astype(float) * 0.4 + 150).astype(np.uint8)  # same detail, less contrast
    assert sharpness(blurred) < 0.5 * sharpness(img)
    assert sharpness(faded) == pytest.approx(sharpness(img), rel=0.1)
    assert sharpness(np.full((64, 64, 3), 128, np.uint8)) == 0.0


def test_grey_art_has_no_chroma_and_colour_art_has_some():
    img = _drawing(1)
    grey = np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    assert chroma(grey) == 0.0
    assert chroma(img) > 0.2


def test_monochrome_tags_are_found_among_others():
    assert monochrome_tags(["1girl", "sketch", "greyscale", "blue_eyes"]) == ["greyscale", "sketch"]
    assert monochrome_tags(["1girl"]) == []


def test_cut_off_is_the_share_of_the_expanded_box_past_the_edge():
    assert box_cut_off((100, 100, 50, 50), 0.25, (400, 400)) == 0.0
    # a 100 px box with 25 % margin is a 150 px square from x = -75: half of it is past the edge
    assert box_cut_off((-50, 100, 100, 100), 0.25, (400, 400)) == pytest.approx(0.5, abs=0.03)


def _limits(**changes):
    """The filter params check_face reads (faces.max_upscale and the rest), all on."""
    return SimpleNamespace(**{"max_upscale": 2.0, "max_cut_off": 0.3, "drop_monochrome": True, "min_chroma": 0.05, "min_sharpness": 0.5, **changes})


CLEAN = FaceMeasures(upscale=1.0, cut_off=0.0, chroma=0.5, sharpness=2.0)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"upscale": 3.0}, "upscaled"),
        ({"cut_off": 0.6}, "cut_off"),
        ({"chroma": 0.01}, "monochrome"),
        ({"sharpness": 0.1}, "blurry"),
    ],
)
def test_each_filter_drops_with_its_reason_and_the_key_named(change, reason):
    params = _limits()
    assert check_face(CLEAN, [], params) is None
    got = check_face(FaceMeasures(**{**CLEAN.__dict__, **change}), [], params)
    assert got is not None and got[0] == reason
    assert "faces." in got[1]


def test_tags_drop_a_colourful_face_and_off_switches_keep_everything():
    params = _limits()
    assert check_face(CLEAN, ["monochrome"], params)[0] == "monochrome"
    off = _limits(max_upscale=0.0, max_cut_off=1.0, drop_monochrome=False, min_sharpness=0.0)
    worst = FaceMeasures(upscale=10.0, cut_off=0.99, chroma=0.0, sharpness=0.0)
    assert check_face(worst, ["sketch"], off) is None
