"""Columns held in temporary files beside a stage's output rather than in memory.

At a million faces a stage's per-face columns (IDs, digests, places) are hundreds of MB; only
what a step works on needs to be in memory. A spilled column is a memory-mapped file: numpy
reads it like an array, and the pages a step touched are handed back with `release` (pages of a
file mapping count as resident until then; the data stays in the file and the page cache). Files
are written with plain writes, never through the map. The folder is removed when the `Spill`
closes, also on error.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np

BLOCK_ROWS = 1 << 16  # rows of a spilled column read at a time by a sequential pass
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
PREFIX = ".spill-"  # then the pid of the run that owns it
GATHER_ROWS = 4096  # rows gathered from a spilled column between releases: a random gather touches a page per row


def fixed_mmap_threshold() -> None:
    """Have glibc's malloc give every block of 128 KiB or more its own mapping, returned when freed.

    By default the threshold rises to the largest block freed so far (up to 32 MiB), and blocks
    below it come from the heap, which keeps freed space resident: after a few passes over
    blocks of a column, a stage holds tens of MB it no longer uses. Elsewhere this does nothing.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    if hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)


def blocks(n: int, size: int | None = None) -> Iterator[slice]:
    """Consecutive slices covering rows 0..n-1, `size` (default BLOCK_ROWS) rows each."""
    size = size or BLOCK_ROWS
    for lo in range(0, n, size):
        yield slice(lo, min(lo + size, n))


def gather_blocks(n: int) -> Iterator[slice]:
    """blocks of GATHER_ROWS rows: for passes that also read rows at random (a page a row)."""
    return blocks(n, GATHER_ROWS)


def _mapping(array: object) -> mmap.mmap | None:
    """The file mapping under an array or a view of one, if any."""
    while array is not None:
        if isinstance(array, mmap.mmap):
            return array
        mapping = getattr(array, "_mmap", None)
        if isinstance(mapping, mmap.mmap):
            return mapping
        array = getattr(array, "base", None)
    return None


def release(*arrays: np.ndarray | None) -> None:
    """Hand back the resident pages of memory-mapped arrays (others are left alone)."""
    for array in arrays:
        mapping = _mapping(array)
        if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
            mapping.madvise(mmap.MADV_DONTNEED)


def read_rows(column: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """column[rows] for rows anywhere in a column. A spilled column's rows are read from its file,
    not through its map: a touch through a map makes the whole page-cache folio around it resident
    (2 MiB a touch on the kernel measured, 64 KiB on older ones), so a few dozen rows read at random
    through the map make a file of any size resident."""
    spilled = _whole_file(column)
    if spilled is None:
        return column[rows]
    width = column.dtype.itemsize
    with open(spilled.filename, "rb", buffering=0) as f:
        fd = f.fileno()
        data = b"".join(os.pread(fd, width, spilled.offset + row * width) for row in np.asarray(rows).tolist())
    return np.frombuffer(data, dtype=column.dtype).copy()


def _whole_file(column: np.ndarray) -> np.memmap | None:
    """The memory map a 1-d column is the whole of (itself, or what np.asarray made of it), if any."""
    array = column
    while array is not None and not (isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap)):  # the map's own array
        array = getattr(array, "base", None)
    if array is None or not array.filename or column.ndim != 1 or array.ndim != 1 or array.dtype != column.dtype:
        return None
    same_start = column.__array_interface__["data"][0] == array.__array_interface__["data"][0]
    return array if same_start and len(array) == len(column) and column.flags.c_contiguous else None


def remove_stale(folder: Path) -> None:
    """Remove spill folders a killed run left in `folder` (their process is gone): the folder is a stage's output."""
    for stale in folder.glob(f"{PREFIX}*"):
        pid = stale.name[len(PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spill:
    """A temporary folder beside `beside` (the same filesystem as the output) for spilled columns."""

    def __init__(self, beside: str | Path) -> None:
        self.beside = Path(beside)
        self.root: Path | None = None
        self._count = 0

    def __enter__(self) -> Self:
        self.beside.mkdir(parents=True, exist_ok=True)
        remove_stale(self.beside)
        self.root = Path(tempfile.mkdtemp(dir=self.beside, prefix=f"{PREFIX}{os.getpid()}-"))
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def new_file(self) -> Path:
        if self.root is None:
            raise RuntimeError("Spill used outside its `with` block")
        self._count += 1
        return self.root / f"{self._count}.col"

    def open(self, path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """The column written to `path` as a read-only map (an empty array for no rows: mmap cannot map nothing)."""
        if not shape[0]:
            return np.empty(shape, dtype=dtype)
        return np.memmap(path, dtype=dtype, mode="r", shape=shape)

    def zeros(self, n: int, dtype: np.dtype | str | type) -> np.ndarray:
        """A writable spilled column of n zeros (a sparse file: nothing is written until the column is)."""
        dtype = np.dtype(dtype)
        if not n:
            return np.zeros(0, dtype=dtype)
        path = self.new_file()
        with open(path, "wb") as f:
            f.truncate(n * dtype.itemsize)
        return np.memmap(path, dtype=dtype, mode="r+", shape=(n,))

    def save(self, array: np.ndarray) -> np.ndarray:
        """`array` moved to a file; the map of it (drop the in-memory one)."""
        path = self.new_file()
        array = np.ascontiguousarray(array)
        with open(path, "wb") as f:
            f.writelines(array[lo : lo + (1 << 16)].tobytes() for lo in range(0, len(array), 1 << 16))
        release(array)
        return self.open(path, array.dtype, array.shape)
