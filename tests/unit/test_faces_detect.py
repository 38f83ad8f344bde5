"""Detector plumbing: which faces are kept and why, cascade errors, the detection key."""

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anigan.errors import UserError
from anigan.params.faces import FacesParams
from preprocess.faces.detect import CascadeDetector, Detection, load_cascade, select_faces
from preprocess.faces.stage import detection_key

SHARED_CASCADE = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "lbpcascade_animeface.xml"
needs_cascade = pytest.mark.skipif(not SHARED_CASCADE.is_file(), reason="shared lbpcascade_animeface.xml not present")


def test_select_keeps_big_sure_faces_best_first_up_to_max():
    params = FacesParams(min_face_size=50, score_threshold=0.5, max_faces=2)
    found = [
        Detection((0, 0, 60, 60), 0.7),
        Detection((100, 0, 40, 40), 0.99),  # too small
        Detection((200, 0, 80, 80), 0.3),  # unsure
        Detection((300, 0, 70, 70), 0.9),
        Detection((400, 0, 70, 70), 0.6),  # third sure face, over max_faces
    ]
    kept, dropped = select_faces(found, params)
    assert [d.score for d in kept] == [0.9, 0.7]
    assert sorted(reason for _, reason, _ in dropped) == ["face_too_small", "low_score", "over_max_faces"]


def test_select_orders_equal_scores_by_position_not_by_input_order():
    params = FacesParams(min_face_size=8)
    a, b = Detection((50, 10, 20, 20), 1.0), Detection((10, 10, 20, 20), 1.0)
    assert select_faces([a, b], params)[0] == select_faces([b, a], params)[0] == [b, a]


def test_cascade_errors_name_the_path_and_the_problem(tmp_path):
    with pytest.raises(UserError, match="cascade_path is not set"):
        load_cascade(None)
    with pytest.raises(UserError, match=r"'.*nope\.xml': no such file"):
        load_cascade(tmp_path / "nope.xml")
    with pytest.raises(UserError, match="cannot be read"):
        load_cascade(tmp_path)
    garbage = tmp_path / "garbage.xml"
    garbage.write_text("<opencv_storage><nothing/></opencv_storage>")
    with pytest.raises(UserError, match=r"garbage\.xml'.*cannot read it as a cascade"):
        load_cascade(garbage)
    garbage.write_text("not xml at all")
    with pytest.raises(UserError, match="cannot read it as a cascade"):
        load_cascade(garbage)


@needs_cascade
def test_cascade_detector_returns_well_formed_detections():
    detector = CascadeDetector(SHARED_CASCADE, min_neighbors=1, min_size=24)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    found = detector.detect(image)
    assert isinstance(found, list)
    for d in found:
        x, y, w, h = d.box
        assert all(isinstance(v, int) for v in d.box) and w >= 24 and h >= 24
        assert 0 <= x and 0 <= y and x + w <= 320 and y + h <= 240 and d.score == 1.0


def test_detection_key_follows_settings_that_change_crops_only():
    base = FacesParams()
    assert detection_key(base) == detection_key(FacesParams())
    for changed in (dict(margin=0.3), dict(size=64), dict(border="pad"), dict(min_face_size=64), dict(max_faces=2)):
        assert detection_key(dataclasses.replace(base, **changed)) != detection_key(base), changed
    for unchanged in (dict(workers=7), dict(seed=3), dict(sheet_faces=5), dict(cascade_neighbors=9)):
        assert detection_key(dataclasses.replace(base, **unchanged)) == detection_key(base), unchanged


@needs_cascade
def test_detection_key_knows_the_cascade_by_content_not_by_path(tmp_path):
    copy = tmp_path / "same.xml"
    shutil.copy(SHARED_CASCADE, copy)
    one = FacesParams(detector="cascade", cascade_path=str(SHARED_CASCADE))
    assert detection_key(one) == detection_key(dataclasses.replace(one, cascade_path=str(copy)))
    assert detection_key(one) != detection_key(dataclasses.replace(one, cascade_neighbors=9))
    copy.write_bytes(SHARED_CASCADE.read_bytes() + b"\n<!-- edited -->\n")
    assert detection_key(one) != detection_key(dataclasses.replace(one, cascade_path=str(copy)))


def test_the_animeface_self_check_finds_the_one_face_of_its_test_picture():
    from preprocess.faces import selfcheck

    assert selfcheck.pillow_works_with_animeface()
    assert selfcheck.faces_in_test_picture() == 1
