"""The real detectors on the demo booru's drawings: the offline pipeline depends on animeface seeing them."""

import io
from pathlib import Path

import pytest
from PIL import Image

from preprocess.boxes import match_boxes

MIN_SIDE = 64  # faces this big and up must be found
IOU = 0.5
CASCADE = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "lbpcascade_animeface.xml"
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


@pytest.mark.skipif(not CASCADE.exists(), reason=f"no cascade file at {CASCADE.name} in the shared models folder")
def test_cascade_runs_on_the_drawings(demo_site, record_property):
    """The lbpcascade cascade is trained on real art; on these drawings its recall is only measured, not required."""
    from preprocess.faces.detect import CascadeDetector

    detector = CascadeDetector(CASCADE, min_neighbors=5, min_size=24)
    scenes = _scenes(demo_site)
    for post, image in scenes:
        for x, y, w, h in (d.box for d in detector.detect(image)):
            assert 0 <= x and 0 <= y and x + w <= post.width and y + h <= post.height
    found, big, true_detections, detections = _score(scenes, lambda image: [d.box for d in detector.detect(image)])
    record_property("cascade_recall", f"{found}/{big}")
    record_property("cascade_precision", f"{true_detections}/{detections}")
    print(f"lbpcascade_animeface: {found}/{big} faces >= {MIN_SIDE} px at IoU >= {IOU}, {true_detections}/{detections} detections on drawn faces")
    assert big >= 30
