"""A face's framing: aligned or not, the recorded transform says where each crop pixel came from."""

import numpy as np
from PIL import Image

from crawler.demo.generator import portrait
from preprocess.faces import align
from preprocess.faces.crop import cut_square, square_crop
from preprocess.faces.framing import cut_face, frame_face, measure_face


def test_unaligned_framing_cuts_as_before_and_records_its_transform():
    image = portrait(3)
    box = (70, 100, 140, 140)
    crop = square_crop(box, 0.25, image.size, "shift")
    framing = frame_face(box, crop, None, "eyes", 0.25, 64)
    assert framing.aligned_by == "none"
    assert np.array_equal(np.asarray(cut_face(image, crop, framing, 64)), np.asarray(cut_square(image, crop, 64)))
    corners = align.source_corners(framing.transform, 64)
    assert np.allclose(corners[0], (crop[0] - 0.5, crop[1] - 0.5))
    assert np.allclose(corners[2], (crop[0] + crop[2] - 0.5, crop[1] + crop[3] - 0.5))


def test_aligned_framing_puts_the_eyes_level_and_measures_the_crop():
    image = portrait(5)
    eyes = ((120.0, 150.0), (190.0, 170.0))  # a head tilted about 16 degrees
    box = (80, 100, 140, 140)
    framing = frame_face(box, square_crop(box, 0.25, image.size, "shift"), eyes, "eyes", 0.25, 128)
    assert framing.aligned_by == "eyes"
    (lu, lv), (ru, rv) = align.apply(framing.transform, eyes)
    assert abs(lv - rv) < 1e-3 and ru > lu  # level, to the rounding the manifest keeps
    m = measure_face(image, box, framing, 0.25, 128)
    assert m.cut_off == 0.0
    assert m.chroma > 0.1
    assert m.upscale == align.scale_of(framing.transform)


def test_a_grey_copy_measures_no_colour_and_a_blurred_one_less_detail():
    image = portrait(7)
    box = (80, 100, 150, 150)
    crop = square_crop(box, 0.25, image.size, "shift")
    framing = frame_face(box, crop, None, "eyes", 0.25, 128)
    sharp = measure_face(image, box, framing, 0.25, 128)
    grey = measure_face(image.convert("L").convert("RGB"), box, framing, 0.25, 128)
    soft = measure_face(Image.fromarray(np.asarray(image.resize((80, 80)).resize(image.size, Image.Resampling.BILINEAR))), box, framing, 0.25, 128)
    assert grey.chroma == 0.0
    assert soft.sharpness < 0.7 * sharp.sharpness


def test_the_recorded_transform_is_the_one_the_crop_was_cut_with():
    image = portrait(9)
    box = (80, 100, 140, 140)
    framing = frame_face(box, square_crop(box, 0.25, image.size, "shift"), ((121.3, 151.7), (188.9, 166.2)), "eyes", 0.25, 128)
    assert all(round(v, 6) == v for row in framing.transform for v in row)
    crop = cut_face(image, None, framing, 128)
    again = align.cut(image, [list(row) for row in framing.transform], 128)
    assert np.array_equal(np.asarray(crop), np.asarray(again))
