"""Packing face crops into one memory-mappable uint8 array (N, H, W, 3) per split, written atomically.

Crops are read one at a time from their shard places (anigan.shards), and each row is written to
the file as it is made, so memory holds one crop. The rows are written, not filled through a
memory map: every page written through a map stays in the process's resident set until the
kernel needs it back, and the array is gigabytes at a million faces.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from array import array
from collections.abc import Callable, Iterable
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

    rows: np.ndarray  # int64 positions of the packed crops among those given
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


def _new_npy(path: Path, rows: int, size: int) -> int:
    """Write the .npy header of a uint8 (rows, size, size, 3) array to `path` (its data zeros, not yet written); return where the data starts."""
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(rows, size, size, 3))
    start = arr.offset  # numpy's own header, so the file is what it would write
    del arr
    return start


def _copy_rows(src: Path, start: int, dst: Path, rows: int, size: int) -> None:
    """An exact-size copy of the first `rows` rows of the array at `src`, streamed in bounded reads."""
    data_start = _new_npy(dst, rows, size)
    left = rows * size * size * 3
    with open(src, "rb") as f, open(dst, "r+b") as out:
        f.seek(start)
        out.seek(data_start)
        while left:
            block = f.read(min(left, 1 << 22))
            if not block:
                raise OSError(f"{src}: shorter than its rows")
            out.write(block)
            left -= len(block)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def pack_faces(
    crops: Iterable[tuple[str, Member | None]], count: int, shards: str | Path, size: int, out: str | Path, progress: Callable[[int], None] | None = None
) -> PackResult:
    """Write the `count` crops (face ID, place in the `shards` folder) as rows of an (N, size, size, 3) uint8 .npy at `out`; unusable ones are skipped.

    The array is written under a temporary name and renamed into place, so `out` is either the
    old file or the complete new one, never a partial one.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(out)
    try:
        start = _new_npy(tmp, count, size)
        rows, skipped, digest = array("q"), [], hashlib.sha256()  # 8 bytes a row, not a Python int
        with ShardReader(shards) as reader, open(tmp, "r+b") as f:
            f.seek(start)
            for i, (face_id, member) in enumerate(crops):
                try:
                    pixels = face_pixels(_read(reader, face_id, member), size)
                except ImageRejected as e:
                    log.warning("face skipped: %s", e)
                    skipped.append((i, e))
                    continue
                data = pixels.tobytes()
                f.write(data)
                digest.update(data)
                rows.append(i)
                if progress:
                    progress(i + 1)
        if len(rows) + len(skipped) != count:
            raise ValueError(f"pack_faces: {len(rows) + len(skipped)} crops given for {count} rows")
        if skipped:
            # rare: a file went bad since dedupe; copy the filled rows to an exact-size array
            exact = _temp_beside(out)
            try:
                _copy_rows(tmp, start, exact, len(rows), size)
            except BaseException:
                exact.unlink(missing_ok=True)
                raise
            tmp.unlink()
            tmp = exact
        _fsync(tmp)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return PackResult(np.frombuffer(rows, dtype=np.int64).copy(), tuple(skipped), digest.hexdigest())
