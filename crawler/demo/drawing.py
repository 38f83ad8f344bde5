"""Drawing one anime face with OpenCV, in the proportions animeface is known to detect.

What makes animeface see a drawing (measured): a hair mass with bangs, a skin face with a pointed
chin and a dark outline, two large eyes with a coloured iris, dark pupil, white highlight and a
thick dark upper lash line. All lengths below are in units of the face radius `r`.
"""

from __future__ import annotations

import cv2
import numpy as np

SKIN_BGR = (210, 228, 255)

# Colour words (Danbooru tag spelling) -> BGR drawing colour.
HAIR_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (40, 35, 35),
    "blonde": (120, 220, 250),
    "blue": (210, 110, 40),
    "brown": (40, 80, 140),
    "green": (70, 160, 60),
    "pink": (190, 150, 250),
    "purple": (170, 70, 130),
    "red": (40, 40, 200),
    "silver": (205, 200, 195),
    "orange": (40, 140, 245),
}
EYE_COLORS: dict[str, tuple[int, int, int]] = {
    "blue": (220, 110, 30),
    "brown": (30, 70, 130),
    "green": (60, 170, 40),
    "purple": (180, 60, 140),
    "red": (40, 30, 210),
    "yellow": (40, 210, 235),
    "aqua": (210, 200, 40),
    "pink": (180, 120, 240),
}


def face_box(cx: float, cy: float, r: float) -> tuple[int, int, int, int]:
    """The ground-truth box [x, y, w, h] of a face drawn at (cx, cy, r), in animeface's convention.

    animeface's box runs from the bangs to below the chin and is square; fitted on drawings
    (median IoU with this box about 0.75).
    """
    return (round(cx - 0.8 * r), round(cy - 0.47 * r), round(1.6 * r), round(1.6 * r))


def face_extent(cx: float, cy: float, r: float) -> tuple[float, float, float, float]:
    """Everything the face drawing paints (hair included), as x0, y0, x1, y1: used to keep faces apart."""
    return (cx - 1.3 * r, cy - 1.5 * r, cx + 1.3 * r, cy + 1.35 * r)


def _px(v: float) -> int:
    return int(round(v))


def draw_face(img: np.ndarray, cx: float, cy: float, r: float, hair: str, eyes: str, rng: np.random.Generator) -> None:
    """Paint one face in place on a BGR uint8 image. `rng` varies small details (bang count, mouth)."""
    hair_bgr = HAIR_COLORS[hair]
    eye_bgr = EYE_COLORS[eyes]
    line = tuple(int(c * 0.35) for c in hair_bgr)
    aa = cv2.LINE_AA

    # Hair mass behind the head, falling to the shoulders.
    cv2.ellipse(img, (_px(cx), _px(cy - 0.15 * r)), (_px(1.25 * r), _px(1.3 * r)), 0, 0, 360, hair_bgr, -1, aa)
    cv2.rectangle(img, (_px(cx - 1.25 * r), _px(cy - 0.1 * r)), (_px(cx + 1.25 * r), _px(cy + 1.3 * r)), hair_bgr, -1)

    # Face: a rounded top and a pointed chin, outlined.
    cv2.ellipse(img, (_px(cx), _px(cy)), (_px(0.95 * r), _px(0.9 * r)), 0, 0, 360, SKIN_BGR, -1, aa)
    chin = np.array([[cx - 0.9 * r, cy + 0.25 * r], [cx + 0.9 * r, cy + 0.25 * r], [cx, cy + 1.1 * r]], np.int32)
    cv2.fillConvexPoly(img, chin, SKIN_BGR, aa)
    thin = max(1, _px(0.03 * r))
    cv2.ellipse(img, (_px(cx), _px(cy)), (_px(0.95 * r), _px(0.9 * r)), 0, 0, 180, line, thin, aa)
    cv2.polylines(img, [chin[1:].reshape(-1, 1, 2), chin[[0, 2]].reshape(-1, 1, 2)], False, line, thin, aa)

    # Bangs: the top of the head, with pointed locks over the forehead.
    cv2.ellipse(img, (_px(cx), _px(cy - 0.35 * r)), (_px(1.05 * r), _px(0.75 * r)), 0, 180, 360, hair_bgr, -1, aa)
    locks = int(rng.integers(4, 7))
    for i in range(locks):
        x0 = cx - 1.0 * r + i * 2.0 * r / locks
        tip = cy - rng.uniform(0.02, 0.12) * r
        lock = np.array([[x0, cy - 0.4 * r], [x0 + 2.0 * r / locks, cy - 0.4 * r], [x0 + 1.0 * r / locks, tip]], np.int32)
        cv2.fillConvexPoly(img, lock, hair_bgr, aa)

    # Eyes: white, coloured iris, dark pupil, highlight, thick upper lash line.
    for side in (-1, 1):
        ex, ey = cx + side * 0.42 * r, cy + 0.2 * r
        ax, ay = 0.17 * r, 0.22 * r
        cv2.ellipse(img, (_px(ex), _px(ey)), (_px(ax), _px(ay)), 0, 0, 360, (255, 255, 255), -1, aa)
        cv2.ellipse(img, (_px(ex), _px(ey + 0.03 * r)), (_px(ax * 0.8), _px(ay * 0.85)), 0, 0, 360, eye_bgr, -1, aa)
        cv2.ellipse(img, (_px(ex), _px(ey + 0.05 * r)), (_px(ax * 0.4), _px(ay * 0.45)), 0, 0, 360, (30, 20, 20), -1, aa)
        cv2.circle(img, (_px(ex - ax * 0.35), _px(ey - ay * 0.3)), max(1, _px(0.05 * r)), (255, 255, 255), -1, aa)
        cv2.ellipse(img, (_px(ex), _px(ey)), (_px(ax * 1.15), _px(ay * 1.05)), 0, 190, 350, (20, 15, 15), max(2, _px(0.07 * r)), aa)

    # Mouth: a small smile or an open mouth.
    mouth = (_px(cx), _px(cy + 0.68 * r))
    if rng.random() < 0.7:
        cv2.ellipse(img, mouth, (_px(0.12 * r), _px(0.05 * r)), 0, 0, 180, (60, 60, 160), max(1, _px(0.03 * r)), aa)
    else:
        cv2.ellipse(img, mouth, (_px(0.08 * r), _px(0.06 * r)), 0, 0, 360, (70, 70, 180), -1, aa)
