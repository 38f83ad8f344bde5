"""Compact keys for a million posts: fixed-width digests in sorted numpy arrays, not Python strings.

A post key (`source:post_id`) becomes a 16-byte blake2b digest and an image ID (sha256 hex) its 32
raw bytes, each followed by one 0x01 byte: numpy's fixed-width bytes drop trailing zero bytes when
an element is read back, and a non-zero last byte keeps every digest whole and comparable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

POST = np.dtype("S17")
IMAGE = np.dtype("S33")
_END = b"\x01"
CHUNK = 1 << 16


def post_digest(key: str) -> bytes:
    """A post key (`source:post_id`) as 17 bytes."""
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest() + _END


def image_digest(image_id: str) -> bytes:
    """An image ID as 33 bytes: its own sha256 bytes (any other string hashed)."""
    if len(image_id) == 64:
        try:
            return bytes.fromhex(image_id) + _END
        except ValueError:
            pass
    return hashlib.blake2b(image_id.encode("utf-8"), digest_size=32).digest() + _END


class Column:
    """Values appended one at a time, stored as numpy chunks (a Python list holds only the last chunk)."""

    def __init__(self, dtype) -> None:
        self.dtype = np.dtype(dtype)
        self._chunks: list[np.ndarray] = []
        self._pending: list = []

    def append(self, value) -> None:
        self._pending.append(value)
        if len(self._pending) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._chunks.append(np.array(self._pending, dtype=self.dtype))
            self._pending = []

    def array(self) -> np.ndarray:
        self._flush()
        return np.concatenate(self._chunks) if self._chunks else np.empty(0, self.dtype)


class KeySet:
    """A set of digests: a sorted unique array, plus what was added since, folded in now and then."""

    def __init__(self, dtype, keys: Iterable[bytes] | np.ndarray = ()) -> None:
        self.dtype = np.dtype(dtype)
        if not isinstance(keys, np.ndarray):
            column = Column(self.dtype)
            for key in keys:
                column.append(key)
            keys = column.array()
        self._sorted = np.unique(keys.astype(self.dtype, copy=False))
        self._added: set[bytes] = set()

    def __contains__(self, key: bytes) -> bool:
        return key in self._added or self._in_sorted(key)

    def _in_sorted(self, key: bytes) -> bool:
        i = int(np.searchsorted(self._sorted, key))
        return i < len(self._sorted) and self._sorted[i] == key

    def add(self, key: bytes) -> bool:
        """Add `key`; True when it was not there."""
        if key in self:
            return False
        self._added.add(key)
        if len(self._added) >= CHUNK:  # a set of bytes costs several times the array: fold it in
            self._sorted = np.union1d(self._sorted, np.array(list(self._added), dtype=self.dtype))
            self._added.clear()
        return True

    def __len__(self) -> int:
        return len(self._sorted) + len(self._added)

    def copy(self) -> KeySet:
        """Another set with the same keys (the sorted array is shared: it is never changed in place)."""
        other = KeySet(self.dtype)
        other._sorted, other._added = self._sorted, set(self._added)
        return other
