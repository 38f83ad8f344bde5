"""The face detectors behind one shape: `detector.detect(rgb_image) -> list[Detection]`.

- `animeface` (default): the nvxs anime face detector. Gives a likelihood in 0..1, a hair colour
  estimate and eye boxes (the iris colour is read from those here). It finds nothing with Pillow 12+, so `open_detector` checks that first and
  then asks it to find a drawn face, failing with one clear line when it cannot.
- `cascade`: an OpenCV cascade XML (e.g. lbpcascade_animeface.xml), fast and good on real art but
  blind to the demo booru's simple drawings. A cascade only says yes or no, so its score is 1.0;
  `faces.cascade_neighbors` is its confidence knob (more neighbours: fewer, surer faces).
- `both`: the union of the two. Where their boxes overlap the animeface detection is kept, as it
  brings a score, colours and the eye positions alignment needs.

OpenCV is limited to one thread per process here, so `faces.workers` is the number of cores used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from anigan.errors import UserError
from anigan.params.faces import FacesParams
from preprocess.boxes import iou
from preprocess.faces import selfcheck
from preprocess.faces.colors import hair_color, iris_color

RGB = tuple[int, int, int]
Point = tuple[float, float]
# Two boxes overlapping at least this much (IoU) are one face in `both` mode: the two detectors
# frame the same face differently (the cascade's box is tighter), so the bar is lower than the
# 0.5 used to score detections against the truth.
SAME_FACE_IOU = 0.3


@dataclass(frozen=True)
class Detection:
    """One face found in an image: its box [x, y, w, h], score in 0..1, and colour estimates if any."""

    box: tuple[int, int, int, int]
    score: float
    hair_rgb: RGB | None = None
    eye_rgb: RGB | None = None
    eyes: tuple[Point, Point] | None = None  # eye centres in source pixels, the image's left one first
    found_by: str = ""  # the detector that found it ("animeface" or "cascade")


class Detector(Protocol):
    name: str

    def detect(self, image: Image.Image) -> list[Detection]: ...


def _hair_rgb(pixels: np.ndarray, face) -> RGB | None:
    """Hair colour read from the pixels between the top of the head and the eyes.

    animeface's own hair colour estimate changes now and then from call to call on the same
    image (pink one run, purple the next), which made a face's label depend on the run; these
    pixels give the same answer every time, and named the demo's hair colours at least as often
    right (docs/faces.md, Colours).
    """
    x, y, w, h = face.face.pos.x, face.face.pos.y, face.face.pos.width, face.face.pos.height
    eyes = (face.left_eye.pos, face.right_eye.pos)
    eye_top, eye_bottom = min(e.y for e in eyes), max(e.y + e.height for e in eyes)
    region = pixels[max(int(y - 0.15 * h), 0) : max(int(eye_top - 0.05 * h), 0), max(int(x + 0.1 * w), 0) : max(int(x + 0.9 * w), 0)]
    cheeks = pixels[max(int(eye_bottom), 0) : max(int(y + 0.85 * h), 0), max(int(x + 0.3 * w), 0) : max(int(x + 0.7 * w), 0)]
    skin = np.median(cheeks.reshape(-1, 3), axis=0) if cheeks.size else np.empty(0)
    return hair_color(region, skin)


def _eye_centres(face) -> tuple[Point, Point]:
    """animeface's eye boxes as centre points, ordered left to right in the image.

    animeface names eyes from the character's side (its `left_eye` is usually on the image's
    right); alignment needs them in image order.
    """
    centres = [(p.x + p.width / 2, p.y + p.height / 2) for p in (face.left_eye.pos, face.right_eye.pos)]
    left, right = sorted(centres)
    return (float(left[0]), float(left[1])), (float(right[0]), float(right[1]))


def _eye_rgb(pixels: np.ndarray, face) -> RGB | None:
    """Iris colour read from both eye boxes.

    animeface's own eye colours change from call to call on the same image (its boxes do not),
    which would make crops' labels depend on the worker count; so the colour is read here from
    the pixels of the boxes it reports.
    """
    boxes = []
    for part in (face.left_eye, face.right_eye):
        b = part.pos
        x0, y0 = max(int(b.x), 0), max(int(b.y), 0)
        boxes.append(pixels[y0 : max(y0, int(b.y + b.height)), x0 : max(x0, int(b.x + b.width))].reshape(-1, 3))
    return iris_color(np.concatenate(boxes))


class AnimefaceDetector:
    """animeface (nvxs): likelihood and colour estimates per face."""

    name = "animeface"

    def __init__(self) -> None:
        import animeface

        self._animeface = animeface

    def detect(self, image: Image.Image) -> list[Detection]:
        found = []
        pixels = np.asarray(image)
        for f in self._animeface.detect(image):
            pos = f.face.pos
            box = (int(pos.x), int(pos.y), int(pos.width), int(pos.height))
            found.append(Detection(box, round(float(f.likelihood), 4), _hair_rgb(pixels, f), _eye_rgb(pixels, f), _eye_centres(f), self.name))
        return found

    def eyes_in_box(self, image: Image.Image, box: tuple[int, int, int, int]) -> tuple[Point, Point] | None:
        """The eyes of the face animeface finds inside `box` (widened by half its side), in source pixels.

        How a face another detector found gets aligned: animeface looks again at just that patch,
        and its most likely face there, if its centre lies in `box`, lends its eyes.
        """
        x, y, w, h = box
        pad = max(w, h) // 2
        left, top = max(0, x - pad), max(0, y - pad)
        patch = image.crop((left, top, min(image.width, x + w + pad), min(image.height, y + h + pad)))
        best = None
        for d in self.detect(patch):
            cx, cy = left + d.box[0] + d.box[2] / 2, top + d.box[1] + d.box[3] / 2
            if x <= cx <= x + w and y <= cy <= y + h and (best is None or d.score > best.score):
                best = d
        if best is None or best.eyes is None:
            return None
        (lx, ly), (rx, ry) = best.eyes
        return (lx + left, ly + top), (rx + left, ry + top)


class CascadeDetector:
    """An OpenCV cascade classifier on the equalised grayscale image."""

    name = "cascade"

    def __init__(self, path: str | Path, min_neighbors: int, min_size: int) -> None:
        import cv2

        self._cv2 = cv2
        self._classifier = load_cascade(path)
        self._min_neighbors = min_neighbors
        self._min_size = min_size

    def detect(self, image: Image.Image) -> list[Detection]:
        cv2 = self._cv2
        gray = cv2.equalizeHist(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY))
        boxes = self._classifier.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=self._min_neighbors, minSize=(self._min_size, self._min_size))
        return [Detection(tuple(int(v) for v in b), 1.0, found_by=self.name) for b in boxes]


class BothDetector:
    """animeface and the cascade together: every face either finds, overlaps counted once."""

    name = "both"

    def __init__(self, animeface: AnimefaceDetector, cascade: CascadeDetector) -> None:
        self.animeface, self.cascade = animeface, cascade

    def detect(self, image: Image.Image) -> list[Detection]:
        return merge_detections(self.animeface.detect(image), self.cascade.detect(image))

    def eyes_in_box(self, image: Image.Image, box: tuple[int, int, int, int]) -> tuple[Point, Point] | None:
        return self.animeface.eyes_in_box(image, box)


def merge_detections(first: list[Detection], second: list[Detection], same_face_iou: float = SAME_FACE_IOU) -> list[Detection]:
    """All of `first`, plus each of `second` that overlaps none of them by `same_face_iou` or more.

    Overlapping detections within `second` itself are merged the same way (first one kept).
    """
    merged = list(first)
    for d in second:
        if all(iou(d.box, m.box) < same_face_iou for m in merged):
            merged.append(d)
    return merged


def load_cascade(path: str | Path | None):
    """A loaded cv2.CascadeClassifier, or a UserError that names the path and what is wrong."""
    import cv2

    if not hasattr(cv2, "CascadeClassifier"):
        raise UserError(f"OpenCV {cv2.__version__} has no CascadeClassifier (removed in OpenCV 5): run `uv sync` (the lock pins opencv<5)")
    if path is None:
        raise UserError("faces.detector is cascade or both but faces.cascade_path is not set: point it at a cascade XML such as lbpcascade_animeface.xml")
    p = Path(path)
    if not p.exists():
        raise UserError(f"faces.cascade_path {str(path)!r}: no such file")
    try:
        with open(p, "rb") as f:
            f.read(1)
    except OSError as e:
        raise UserError(f"faces.cascade_path {str(path)!r}: cannot be read ({e.strerror or e})") from None
    try:
        classifier = cv2.CascadeClassifier(str(p))
        empty = classifier.empty()
    except (cv2.error, SystemError):  # OpenCV 4 wraps its parse errors in SystemError
        empty = True
    if empty:
        raise UserError(f"faces.cascade_path {str(path)!r}: OpenCV cannot read it as a cascade XML")
    return classifier


def check_animeface() -> None:
    """Fail with one clear line when animeface cannot work here (Pillow 12+, or blind to a drawn face)."""
    if not selfcheck.pillow_works_with_animeface():
        raise UserError(
            f"animeface self-check failed: Pillow {selfcheck.pillow_version()} (animeface finds no faces with Pillow 12+); fix: {selfcheck.PILLOW_FIX}"
        )
    found = selfcheck.faces_in_test_picture()
    if found < 1:
        raise UserError(f"animeface self-check failed: it found no face on a drawn test face; fix: {selfcheck.PILLOW_FIX}")


def make_detector(params: FacesParams) -> Detector:
    """The detector `params.detector` names, built for this process (cheap: call once per worker)."""
    import cv2

    cv2.setNumThreads(1)  # one core per worker: the pool, not OpenCV, spreads the work
    if params.detector == "cascade":
        return CascadeDetector(params.cascade_path, params.cascade_neighbors, params.min_face_size)
    if params.detector == "both":
        return BothDetector(AnimefaceDetector(), CascadeDetector(params.cascade_path, params.cascade_neighbors, params.min_face_size))
    return AnimefaceDetector()


def open_detector(params: FacesParams) -> Detector:
    """make_detector plus the start-up checks: the cascade file loads, or animeface sees a drawn face."""
    detector = make_detector(params)  # first: it limits OpenCV to one thread before any drawing
    if params.detector in ("animeface", "both"):
        check_animeface()
    return detector


def select_faces(found: list[Detection], params: FacesParams) -> tuple[list[Detection], list[tuple[Detection, str, str]]]:
    """Keep faces big and sure enough, best `max_faces` first; the rest with (reason, detail).

    Kept faces are ordered by score (highest first), then by position, so the order never depends
    on the detector's internal order for equal scores.
    """
    ranked = sorted(found, key=lambda d: (-d.score, d.box[1], d.box[0], d.box[2]))
    kept: list[Detection] = []
    dropped: list[tuple[Detection, str, str]] = []
    for d in ranked:
        side = min(d.box[2], d.box[3])
        if side < params.min_face_size:
            dropped.append((d, "face_too_small", f"{side} px < faces.min_face_size {params.min_face_size}"))
        elif d.score < params.score_threshold:
            dropped.append((d, "low_score", f"{d.score} < faces.score_threshold {params.score_threshold}"))
        elif len(kept) >= params.max_faces:
            dropped.append((d, "over_max_faces", f"more than faces.max_faces {params.max_faces} in the image"))
        else:
            kept.append(d)
    return kept, dropped
