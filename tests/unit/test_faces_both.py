"""faces.detector: both: the union of the two detectors, one face counted once."""

from pathlib import Path

import numpy as np
import pytest

from anigan.params.faces import FacesParams
from preprocess.faces.detect import BothDetector, Detection, make_detector, merge_detections

SHARED_CASCADE = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "lbpcascade_animeface.xml"
needs_cascade = pytest.mark.skipif(not SHARED_CASCADE.is_file(), reason="shared lbpcascade_animeface.xml not present")


def test_overlapping_boxes_are_one_face_and_the_first_detector_wins():
    anime = [Detection((100, 100, 80, 80), 0.9, eyes=((120, 130), (160, 130)), found_by="animeface")]
    cascade = [
        Detection((110, 108, 66, 66), 1.0, found_by="cascade"),  # the same face, framed tighter
        Detection((300, 50, 60, 60), 1.0, found_by="cascade"),  # a face animeface missed
        Detection((305, 52, 58, 58), 1.0, found_by="cascade"),  # the cascade twice on that face
    ]
    merged = merge_detections(anime, cascade)
    assert [d.found_by for d in merged] == ["animeface", "cascade"]
    assert merged[0].eyes is not None
    assert merged[1].box == (300, 50, 60, 60)


def test_separate_faces_all_stay():
    a = [Detection((0, 0, 50, 50), 0.8)]
    b = [Detection((200, 0, 50, 50), 1.0)]
    assert len(merge_detections(a, b)) == 2


@needs_cascade
def test_both_mode_runs_both_detectors():
    detector = make_detector(FacesParams(detector="both", cascade_path=str(SHARED_CASCADE), min_face_size=24))
    assert isinstance(detector, BothDetector)
    from crawler.demo.generator import portrait

    picture = portrait(0)
    assert len(detector.cascade.detect(picture)) == 1, "the cascade sees the demo's drawn face too"
    found = detector.detect(picture)
    # the two detectors' boxes for that face overlap, so it is one face, animeface's (with its eyes)
    assert [d.found_by for d in found] == ["animeface"] and found[0].eyes is not None
    assert all(isinstance(d.box[0], int) for d in found)
    assert np.isfinite([d.score for d in found]).all()
