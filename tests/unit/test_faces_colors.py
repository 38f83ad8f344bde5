"""Hair/eye colour words: from tags for single-face images, else from the detector's RGB estimate."""

import numpy as np
import pytest

from anigan.colors import EYE_COLORS, HAIR_COLORS
from preprocess.faces.colors import describe_face, eyes_from_tags, hair_color, hair_from_tags, iris_color, nearest_color


@pytest.mark.parametrize("palette", [HAIR_COLORS, EYE_COLORS])
def test_each_reference_colour_names_itself(palette):
    assert all(nearest_color(rgb, palette) == name for name, rgb in palette.items())


@pytest.mark.parametrize(
    "rgb, palette, expected",
    [
        ((20, 20, 70), HAIR_COLORS, "black"),  # very dark blue reads as black hair
        ((255, 235, 160), HAIR_COLORS, "blonde"),
        ((230, 230, 235), HAIR_COLORS, "silver"),
        ((150, 90, 60), HAIR_COLORS, "brown"),
        ((80, 220, 225), EYE_COLORS, "aqua"),
        ((250, 220, 80), EYE_COLORS, "yellow"),
    ],
)
def test_shades_go_to_the_word_a_person_would_use(rgb, palette, expected):
    assert nearest_color(rgb, palette) == expected


def test_tags_give_a_colour_only_when_exactly_one_is_named():
    assert hair_from_tags(["1girl", "blue_hair", "long_hair", "red_eyes"]) == "blue"
    assert eyes_from_tags(["1girl", "blue_hair", "red_eyes"]) == "red"
    assert hair_from_tags(["2girls", "blue_hair", "pink_hair"]) is None
    assert hair_from_tags(["long_hair", "hair_ornament"]) is None
    assert hair_from_tags(["white_hair"]) == "silver"  # booru synonym
    assert eyes_from_tags(["heterochromia", "blue_eyes", "green_eyes"]) is None


def test_one_face_uses_the_tags_over_the_detector():
    assert describe_face(["blue_hair", "red_eyes"], 1, (240, 210, 120), (50, 95, 215)) == ("blue", "red", "tags")


def test_several_faces_ignore_the_tags_and_name_the_estimate():
    assert describe_face(["blue_hair", "red_eyes"], 2, (240, 210, 120), (50, 95, 215)) == ("blonde", "blue", "detector")


def test_silent_tags_fall_back_per_attribute():
    assert describe_face(["blue_hair"], 1, (240, 210, 120), (205, 35, 45)) == ("blue", "red", "tags+detector")


def test_nothing_known_gives_nulls():
    assert describe_face([], 3, None, None) == (None, None, None)


def _eye(iris, size=24):
    """A drawn eye box: skin, white sclera, a coloured iris, a black pupil, a white highlight, a lash line."""
    eye = np.full((size, size, 3), (248, 225, 205), np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    c = size / 2
    eye[(yy - c) ** 2 / 1.2 + (xx - c) ** 2 < (size * 0.45) ** 2] = (255, 255, 255)
    eye[(yy - c) ** 2 + (xx - c) ** 2 < (size * 0.35) ** 2] = iris
    eye[(yy - c) ** 2 + (xx - c) ** 2 < (size * 0.15) ** 2] = (15, 15, 20)
    eye[(yy - c + 4) ** 2 + (xx - c + 4) ** 2 < 4] = (255, 255, 255)
    eye[:3] = (20, 20, 20)
    return eye


@pytest.mark.parametrize("word", sorted(EYE_COLORS))
def test_iris_colour_is_read_past_pupil_lashes_highlight_and_skin(word):
    assert nearest_color(iris_color(_eye(EYE_COLORS[word])), EYE_COLORS) == word


def test_iris_colour_of_grey_eyes_and_of_nothing():
    assert iris_color(_eye((90, 90, 95))) is not None
    assert iris_color(np.zeros((0, 3), np.uint8)) is None


def test_hair_colour_is_the_commonest_colour_above_the_eyes_that_is_not_skin():
    skin = np.array([250, 220, 190])
    region = np.zeros((20, 30, 3), np.uint8)
    region[:] = skin  # forehead
    region[:12] = (60, 100, 205)  # bangs, the bigger fill
    region[:3, :10] = (30, 50, 120)  # shading in the hair
    rgb = hair_color(region, skin)
    assert nearest_color(rgb, HAIR_COLORS) == "blue"
    assert hair_color(np.zeros((0, 0, 3), np.uint8), skin) is None
    # hair the colour of the skin: nothing is set aside, the commonest colour still wins
    assert hair_color(np.full((5, 5, 3), skin, np.uint8), skin) == tuple(skin)
