"""Packing face crops into one memory-mappable uint8 array (N, H, W, 3) per split, written atomically.

Crops are read one at a time from their shard places (anigan.shards), so memory holds one crop.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from anigan.shards import Member, ShardReader
from preprocess.imageio import Encoded, ImageRejected, load_face

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackResult:
    """Which inputs became rows (in order), which were skipped and why, and a sha256 of the pixels."""

    rows: tuple[int, ...]
    skipped: tuple[tuple[int, ImageRejected], ...]
    pixels_sha256: str


def face_pixels(path: str | Path | Encoded, size: int) -> np.ndarray:
    """One face file (or a crop's bytes) as an RGB uint8 (size, size, 3) array, resized with area interpolation; raises ImageRejected."""
    rgb = load_face(path)
    h, w = rgb.shape[:2]
    if h != w:
        name = path.name if isinstance(path, Encoded) else Path(path).name
        raise ImageRejected("not_square", f"{name} is {w}x{h}; face crops are square")
    if h != size:
        rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)


def _read(reader: ShardReader, face_id: str, member: Member | None) -> Encoded:
    if member is None:
        raise ImageRejected("missing_file", f"{face_id}: the faces manifest names no shard for it")
    try:
        return Encoded(reader.read(member), f"{face_id}.png")
    except OSError as e:
        raise ImageRejected("missing_file", f"{face_id}: {e}") from None


def _temp_beside(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def pack_faces(
    crops: Sequence[tuple[str, Member | None]], shards: str | Path, size: int, out: str | Path, progress: Callable[[int], None] | None = None
) -> PackResult:
    """Write the crops (face ID, place in the `shards` folder) as rows of an (N, size, size, 3) uint8 .npy at `out`; unusable ones are skipped.

    The array is filled through a memory map under a temporary name and renamed into place, so
    `out` is either the old file or the complete new one, never a partial one.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(out)
    try:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(crops), size, size, 3))
        rows, skipped, digest = [], [], hashlib.sha256()
        reader = ShardReader(shards)
        for i, (face_id, member) in enumerate(crops):
            try:
                pixels = face_pixels(_read(reader, face_id, member), size)
            except ImageRejected as e:
                log.warning("face skipped: %s", e)
                skipped.append((i, e))
                continue
            arr[len(rows)] = pixels
            digest.update(pixels.tobytes())
            rows.append(i)
            if progress:
                progress(i + 1)
        reader.close()
        arr.flush()
        del arr
        if len(rows) < len(crops):  # rare: a file went bad since dedupe; copy the filled rows to an exact-size array
            full = np.load(tmp, mmap_mode="r")
            exact_tmp = _temp_beside(out)
            exact = np.lib.format.open_memmap(exact_tmp, mode="w+", dtype=np.uint8, shape=(len(rows), size, size, 3))
            exact[:] = full[: len(rows)]
            exact.flush()
            del exact, full
            tmp.unlink()
            tmp = exact_tmp
        _fsync(tmp)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return PackResult(tuple(rows), tuple(skipped), digest.hexdigest())
