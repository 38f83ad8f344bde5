"""Faces of reposted pictures: source images whose whole-picture pHashes are close, and the faces they share.

Face hashes alone miss a repost when the detector boxes the copy's faces a few pixels differently
from the original's (animeface does on re-encoded, resized or shifted copies, and those crops hash
20 bits and more apart). The whole picture does not move with the detector, so its pHash still finds
the repost. The faces of two such images are then paired by where they sit: boxes in coordinates
relative to the image size (so a resized copy lines up), matched one to one, best overlap first,
at IoU >= `box_iou`. Different faces of one scene sit apart, so they do not pair unless their boxes
overlap that much.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Sequence

import numpy as np

from preprocess.boxes import match_boxes
from preprocess.spill import read_rows

LOAD_PAIRS = 4096  # image pairs whose images' faces, boxes and sizes are read from spilled columns at once


def relative_box(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float] | None:
    """An [x, y, w, h] pixel box as fractions of the image's width and height; None when the box or size is unusable."""
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError):
        return None
    if width <= 0 or height <= 0 or w <= 0 or h <= 0:
        return None
    return (x / width, y / height, w / width, h / height)


def faces_of_image_pairs(
    image_pairs: np.ndarray,
    faces_by_image: Sequence[Sequence[tuple[int, Sequence[float]]]],
    sizes: Sequence[tuple[int, int]],
    min_iou: float,
) -> np.ndarray:
    """Face pairs (k, 2) joined through near-duplicate images.

    `image_pairs` holds (a, b) image indices; `faces_by_image[a]` lists (face index, pixel box) of
    image a, and `sizes[a]` is its decoded (width, height).
    """
    edges: list[tuple[int, int]] = []
    image_pairs = np.asarray(image_pairs, dtype=np.int64).reshape(-1, 2)
    for lo in range(0, len(image_pairs), LOAD_PAIRS):
        block = image_pairs[lo : lo + LOAD_PAIRS]
        for table in (faces_by_image, sizes):
            if hasattr(table, "load"):  # read by row from spilled columns, never through their maps
                table.load(np.unique(block))
        edges += _block_edges(block, faces_by_image, sizes, min_iou)
    return np.array(edges, dtype=np.int64).reshape(-1, 2)


def _block_edges(
    image_pairs: np.ndarray, faces_by_image: Sequence[Sequence[tuple[int, Sequence[float]]]], sizes: Sequence[tuple[int, int]], min_iou: float
) -> list[tuple[int, int]]:
    edges: list[tuple[int, int]] = []
    for a, b in image_pairs.tolist():
        left = _placed(faces_by_image[a], sizes[a])
        right = _placed(faces_by_image[b], sizes[b])
        if not left or not right:
            continue
        for i, j in match_boxes([box for _, box in left], [box for _, box in right], min_iou):
            edges.append((left[i][0], right[j][0]))
    return edges


def _placed(faces: Sequence[tuple[int, Sequence[float]]], size: tuple[int, int]) -> list[tuple[int, tuple[float, ...]]]:
    """The faces of one image whose boxes can be placed in it, with relative boxes."""
    placed = []
    for face, box in faces:
        rel = relative_box(box, *size)
        if rel is not None:
            placed.append((face, rel))
    return placed


class FacesByImage:
    """faces_by_image for `faces_of_image_pairs`, from columns: `self[k]` lists (face index, box) of
    the faces of image k in face order, a box None when it is unusable.

    `image_of[i]` is face i's image index (-1: none of these images); `boxes` is (N, 4) and
    `box_ok[i]` says whether face i's box was four numbers. Only index arrays are held, never a
    list per image.
    """

    def __init__(self, image_of: np.ndarray, boxes: np.ndarray, box_ok: np.ndarray, images: int) -> None:
        image_of = np.asarray(image_of)
        index = np.int32 if len(image_of) < 2**31 else np.int64
        placed = np.nonzero(image_of >= 0)[0].astype(index)
        self._faces = placed[np.argsort(image_of[placed], kind="stable")]
        del placed
        self._starts = np.searchsorted(image_of[self._faces], np.arange(images + 1)).astype(index)
        self._boxes, self._box_ok = boxes, box_ok

    def __len__(self) -> int:
        return len(self._starts) - 1

    def load(self, images: np.ndarray) -> None:
        """Read the boxes of the faces of `images` (ascending) by row, for the `self[k]` that follow (the last load's only)."""
        faces = [self._faces[self._starts[k] : self._starts[k + 1]] for k in images.tolist()]
        rows = np.concatenate(faces) if faces else np.zeros(0, dtype=np.int64)
        ok = read_rows(self._box_ok, rows).astype(bool)
        boxes = np.zeros((len(rows), 4), dtype=np.float64)
        boxes[ok] = _box_rows(self._boxes, rows[ok])
        self._loaded = {int(i): (b.tolist() if o else None) for i, b, o in zip(rows.tolist(), boxes, ok)}

    def release(self) -> None:
        """Nothing to hand back: spilled boxes are read by row, not through their maps."""

    def __getitem__(self, k: int) -> list[tuple[int, tuple[float, ...] | None]]:
        faces = self._faces[self._starts[k] : self._starts[k + 1]].tolist()
        loaded = getattr(self, "_loaded", {})
        if all(i in loaded for i in faces):
            return [(i, tuple(loaded[i]) if loaded[i] is not None else None) for i in faces]
        return [(i, tuple(self._boxes[i].tolist()) if self._box_ok[i] else None) for i in faces]


def _box_rows(boxes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """boxes[rows] of an (N, 4) column; a spilled one read from its file by row (see spill.read_rows)."""
    if not (isinstance(boxes, np.memmap) and isinstance(boxes.base, mmap.mmap) and boxes.filename and boxes.flags.c_contiguous):
        return np.asarray(boxes[rows])
    width = boxes.dtype.itemsize * int(np.prod(boxes.shape[1:], dtype=np.int64))
    with open(boxes.filename, "rb", buffering=0) as f:
        data = b"".join(os.pread(f.fileno(), width, boxes.offset + row * width) for row in rows.tolist())
    return np.frombuffer(data, dtype=boxes.dtype).reshape(len(rows), *boxes.shape[1:]).copy()


class ImageSizes:
    """sizes for `faces_of_image_pairs` from width and height columns: (width, height) made when asked, never a list per image."""

    def __init__(self, width: np.ndarray, height: np.ndarray) -> None:
        self._width, self._height = width, height
        self._loaded: dict[int, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self._width)

    def load(self, images: np.ndarray) -> None:
        """Read the sizes of `images` by row, for the `self[k]` that follow (the last load's only)."""
        self._loaded = dict(zip(images.tolist(), zip(read_rows(self._width, images).tolist(), read_rows(self._height, images).tolist())))

    def __getitem__(self, k: int) -> tuple[int, int]:
        size = self._loaded.get(k)
        if size is not None:
            return int(size[0]), int(size[1])
        return int(self._width[k]), int(self._height[k])
