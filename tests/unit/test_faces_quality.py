"""Precision/recall at IoU >= 0.5, with size floors treated as "don't care"."""

import pytest

from preprocess.boxes import iou, match_boxes
from preprocess.faces.quality import detection_quality


def face(x, y, side, hair=None, eyes=None):
    return {"box": [x, y, side, side], "hair_color": hair, "eye_color": eyes}


def test_iou_of_identical_disjoint_and_half_overlapping_boxes():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0  # touching edges share no area
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_matching_is_one_to_one_and_best_overlap_first():
    truth = [(0, 0, 10, 10), (4, 0, 10, 10)]
    found = [(3, 0, 10, 10)]  # overlaps the second better
    assert match_boxes(found, truth, 0.5) == [(0, 1)]
    # two detections of one face: only one counts
    assert match_boxes([(0, 0, 10, 10), (1, 0, 10, 10)], [(0, 0, 10, 10)], 0.5) == [(0, 0)]


def test_boxes_below_the_iou_threshold_do_not_match():
    assert match_boxes([(5, 0, 10, 10)], [(0, 0, 10, 10)], 0.5) == []


def test_precision_and_recall_count_misses_and_false_alarms():
    images = [
        ([face(0, 0, 100), face(300, 300, 80)], [face(2, 2, 100)]),  # one hit, one false alarm
        ([], [face(50, 50, 90)]),  # one miss
        ([face(10, 10, 70)], [face(10, 10, 70)]),  # one hit
    ]
    q = detection_quality(images, 0.5)
    assert (q.images, q.truth_faces, q.true_positives, q.false_positives) == (3, 3, 2, 1)
    assert q.precision == pytest.approx(2 / 3, abs=1e-4) and q.recall == pytest.approx(2 / 3, abs=1e-4)


def test_faces_below_the_size_floor_are_dont_care():
    images = [
        ([face(0, 0, 30)], [face(0, 0, 30)]),  # small found small: ignored
        ([face(200, 200, 40)], []),  # small false alarm: ignored
        ([], [face(0, 0, 20)]),  # small miss: ignored
        ([face(0, 0, 80)], [face(0, 0, 80)]),
    ]
    q = detection_quality(images, 0.5, min_size=64)
    assert (q.truth_faces, q.true_positives, q.false_positives) == (1, 1, 0)
    assert q.precision == 1.0 and q.recall == 1.0
    q_all = detection_quality(images, 0.5, min_size=0)
    assert (q_all.truth_faces, q_all.true_positives, q_all.false_positives) == (3, 2, 1)


def test_colour_accuracy_is_measured_on_matched_faces_with_both_colours():
    images = [([face(0, 0, 80, "blue", "red"), face(200, 0, 80, "pink", None)], [face(0, 0, 80, "blue", "green"), face(200, 0, 80, "black", "red")])]
    q = detection_quality(images, 0.5)
    assert q.hair_accuracy == 0.5 and q.eye_accuracy == 0.0


def test_empty_input_makes_no_mistakes():
    q = detection_quality([], 0.5)
    assert q.precision == 1.0 and q.recall == 1.0 and q.hair_accuracy is None


def test_a_cascade_box_is_scored_in_animefaces_framing():
    """The cascade frames a face 1.5 times wider on the same centre: that alone is no miss."""
    from preprocess.faces.quality import scored_box

    truth = [{"box": [100, 100, 80, 80]}]
    wide = {"box": [80, 80, 120, 120]}  # the same face, framed as the cascade frames it
    assert detection_quality([([wide], truth)], 0.5).recall == 0.0  # unknown detector: taken as it is
    q = detection_quality([([{**wide, "detector": "cascade"}], truth)], 0.5)
    assert (q.recall, q.precision) == (1.0, 1.0)
    assert tuple(scored_box({**wide, "detector": "cascade"})) == (100, 100, 80, 80)
    elsewhere = {"box": [300, 80, 120, 120], "detector": "cascade"}  # a wide box on no face stays a false one
    assert detection_quality([([elsewhere], truth)], 0.5).precision == 0.0
