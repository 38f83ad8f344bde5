"""Defects planted in demo posts, so the faces stage's quality filters can be measured.

Each is a flaw a face generator should not learn from, done the way it shows up on real boorus:

- `blurred`: the faces are soft (a low-quality upscale or a depth-of-field effect), blurred by a
  share of the face's radius so every face size looks equally soft in its crop.
- `monochrome`: the whole picture is grey or faintly tinted (sepia); half of these posts carry the
  booru tags for it and half do not, so both ways of spotting it are tested.
- `tiny`: every face is drawn small, so a crop of it would be blown up.
- `cut_off`: the picture is cropped through the face, leaving part of it past the edge.
- `text`: words over the face (a speech line, a signature, a watermark).

The functions are pure: they take the drawn BGR pixels and faces and return new ones.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

DEFECTS = ("blurred", "monochrome", "tiny", "cut_off", "text")
# A tiny face's box side in px: above the faces stage's default 48 px floor (so it is found and
# cropped) but small enough that a 128 px crop of it is blown up.
TINY_SIDES = (48, 64)
WORDS = ("SAMPLE", "kawaii!!", "(c) artist", "NO REPOST", "え?", "wip", "sketchbook", "HELLO")


def blur_faces(pixels: np.ndarray, extents: list[tuple[float, float, float, float]], radii: list[float], rng: np.random.Generator) -> np.ndarray:
    """Each face's drawing blurred, with a sigma of 2-6 % of its radius (more and no detector finds it), feathered into the background."""
    out = pixels.astype(np.float32)
    height, width = pixels.shape[:2]
    for (x0, y0, x1, y1), r in zip(extents, radii):
        sigma = float(rng.uniform(0.02, 0.06)) * r
        blurred = cv2.GaussianBlur(pixels, (0, 0), sigma).astype(np.float32)
        mask = np.zeros((height, width), np.float32)
        cv2.rectangle(mask, (int(x0), int(y0)), (int(x1), int(y1)), 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, r * 0.2))[:, :, None]
        out = out * (1 - mask) + blurred * mask
    return np.clip(out.round(), 0, 255).astype(np.uint8)


def to_monochrome(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grey, or (one in three) grey with a faint warm tint, as sepia sketches are."""
    gray = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY).astype(np.float32)
    if rng.random() < 1 / 3:
        tint = np.array([0.92, 0.97, 1.0], np.float32)  # BGR: a little less blue, a little more red
        return np.clip(gray[:, :, None] * tint, 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2).astype(np.uint8)


def write_over(pixels: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A line of text across the face, about a fifth of the box high, at eye or mouth height."""
    out = pixels.copy()
    x, y, w, h = box
    word = str(rng.choice([w_ for w_ in WORDS if w_.isascii()]))
    thickness = max(1, round(h / 30))
    scale = 1.0
    (tw, th), _ = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    scale = 0.95 * w / tw  # the words span the face
    (tw, th), _ = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    baseline_y = int(y + h * float(rng.uniform(0.45, 0.8)) + th / 2)
    colour = (255, 255, 255) if rng.random() < 0.5 else (20, 20, 20)
    outline = (20, 20, 20) if colour[0] > 128 else (255, 255, 255)
    origin = (int(x + (w - tw) / 2), baseline_y)
    cv2.putText(out, word, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, outline, thickness + 2, cv2.LINE_AA)
    cv2.putText(out, word, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)
    return out


def cut_through(pixels: np.ndarray, box: tuple[int, int, int, int], margin: float, rng: np.random.Generator) -> tuple[np.ndarray, int, int, float]:
    """The picture cropped so that 15-40 % (from the top 15-30 %) of the face's crop (its box plus `margin`) is past one edge.

    Returns (pixels, dx, dy, share): the new picture, how far its origin moved, and the share of
    the face's crop now outside it. The cut falls on the left, right or top: a face cut off at
    the chin still shows its eyes, and that is what a cut-off filter must catch.
    """
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2
    edge = str(rng.choice(["left", "right", "top"]))
    # from the top, more than this would cut away the eyes, and with them the face a detector sees
    share = float(rng.uniform(0.15, 0.3 if edge == "top" else 0.4))
    if edge == "left":
        cut = math.floor(cx - side / 2 + share * side)
        return pixels[:, cut:].copy(), -cut, 0, share
    if edge == "right":
        cut = math.ceil(cx + side / 2 - share * side)
        return pixels[:, :cut].copy(), 0, 0, share
    cut = math.floor(cy - side / 2 + share * side)
    return pixels[cut:, :].copy(), 0, -cut, share


def clip_box(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """The part of a box inside the image: what a detector can see of a cut-off face."""
    x, y, w, h = box
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))
