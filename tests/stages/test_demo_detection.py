"""The real detectors on the demo booru's drawings: the offline pipeline depends on animeface seeing
them, and every detector mode (animeface, cascade, both) is measured on them with a minimum recall
and precision. Boxes are scored in animeface's framing, as faces.json scores them
(preprocess/faces/quality.py, scored_box)."""

import io
from pathlib import Path

import pytest
from PIL import Image

from anigan.params.faces import FacesParams
from preprocess.boxes import match_boxes
from preprocess.faces.quality import scored_box

MIN_SIDE = 64  # faces this big and up must be found
IOU = 0.5
CASCADE = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "lbpcascade_animeface.xml"
needs_cascade = pytest.mark.skipif(not CASCADE.exists(), reason=f"no cascade file at {CASCADE.name} in the shared models folder")
# Measured on these 60 posts (seed 0): the cascade found 25 of 34 faces (0.74) with no false one;
# both found 33 of 34 at precision 0.93. The floors leave headroom of several faces.
CASCADE_RECALL, CASCADE_PRECISION = 0.5, 0.85
BOTH_RECALL, BOTH_PRECISION = 0.9, 0.85
FORMAT_KINDS = ("grayscale", "rgba", "cmyk", "animated_gif")
COPY_KINDS = ("md5_mismatch", "near_duplicate_jpeg", "near_duplicate_resized", "near_duplicate_shifted")


def _rgb(data: bytes) -> Image.Image | None:
    """The post's first frame as RGB, or None when it is not a usable image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.convert("RGB")
    except (OSError, Image.DecompressionBombError):
        return None


def _scenes(site, kinds=("scene",)):
    return [(post, image) for post in site.posts if post.kind in kinds and (image := _rgb(post.data)) is not None]


def _animeface_boxes(image: Image.Image) -> list[tuple[int, int, int, int]]:
    import animeface

    return [(f.face.pos.x, f.face.pos.y, f.face.pos.width, f.face.pos.height) for f in animeface.detect(image)]


def _score(posts_and_images, detect) -> tuple[int, int, int, int]:
    """(big faces found, big faces, detections matching a drawn face of any size, detections)."""
    found = big = true_detections = detections = 0
    for post, image in posts_and_images:
        boxes = detect(image)
        truth = [f.box for f in post.faces]
        pairs = match_boxes(boxes, truth, IOU)
        matched_truth = {j for _, j in pairs}
        big_faces = [j for j, box in enumerate(truth) if min(box[2], box[3]) >= MIN_SIDE]
        big += len(big_faces)
        found += sum(j in matched_truth for j in big_faces)
        true_detections += len(pairs)
        detections += len(boxes)
    return found, big, true_detections, detections


def test_animeface_finds_the_drawn_faces(demo_site):
    scenes = _scenes(demo_site)
    found, big, true_detections, detections = _score(scenes, _animeface_boxes)
    recall, precision = found / big, true_detections / max(detections, 1)
    message = f"animeface: {found}/{big} faces >= {MIN_SIDE} px at IoU >= {IOU} (recall {recall:.2f}), precision {precision:.2f} over {len(scenes)} scene posts"
    assert big >= 30, message
    assert recall >= 0.8, message
    assert precision >= 0.9, message


def test_faces_in_odd_formats_are_found_once_converted_to_rgb(demo_site):
    """Planted format edge cases carry big faces, so a miss downstream means the format was mishandled."""
    posts = _scenes(demo_site, FORMAT_KINDS + COPY_KINDS)
    assert {post.kind for post, _ in posts} >= set(FORMAT_KINDS)
    for post, _ in posts:
        if post.kind in FORMAT_KINDS:
            assert any(min(f.box[2:]) >= MIN_SIDE for f in post.faces), post.kind
    found, big, _, _ = _score(posts, _animeface_boxes)
    assert found == big, f"{found}/{big}"


def _detector_boxes(detector):
    """image -> the detector's boxes in animeface's framing (a cascade box is wider)."""
    return lambda image: [scored_box({"box": d.box, "detector": d.found_by}) for d in detector.detect(image)]


def _assert_finds(name, scenes, detect, min_recall, min_precision):
    found, big, true_detections, detections = _score(scenes, detect)
    recall, precision = found / big, true_detections / max(detections, 1)
    message = f"{name}: {found}/{big} faces >= {MIN_SIDE} px at IoU >= {IOU} (recall {recall:.2f}), precision {precision:.2f} over {len(scenes)} scene posts"
    print(message)
    assert big >= 30, message
    assert recall >= min_recall, message
    assert precision >= min_precision, message


@pytest.mark.slow
@needs_cascade
def test_cascade_finds_the_drawn_faces(demo_site):
    """The lbpcascade cascade, trained on real art, finds the drawings too: they are drawn as line art."""
    from preprocess.faces.detect import make_detector

    detector = make_detector(FacesParams(detector="cascade", cascade_path=str(CASCADE), min_face_size=24))
    scenes = _scenes(demo_site)
    for post, image in scenes:
        for x, y, w, h in (d.box for d in detector.detect(image)):
            assert 0 <= x and 0 <= y and x + w <= post.width and y + h <= post.height
    _assert_finds("lbpcascade_animeface", scenes, _detector_boxes(detector), min_recall=CASCADE_RECALL, min_precision=CASCADE_PRECISION)


@pytest.mark.slow
@needs_cascade
def test_both_finds_at_least_what_animeface_finds(demo_site):
    from preprocess.faces.detect import make_detector

    detector = make_detector(FacesParams(detector="both", cascade_path=str(CASCADE), min_face_size=24))
    scenes = _scenes(demo_site)
    _assert_finds("both", scenes, _detector_boxes(detector), min_recall=BOTH_RECALL, min_precision=BOTH_PRECISION)
