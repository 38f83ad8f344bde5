"""Hashes of face crops: a 64-bit perceptual hash (DCT of a 32x32 grayscale) and a digest of the decoded pixels.

The perceptual hash follows the classic pHash recipe: shrink to 32x32 gray with area averaging,
take the 2-D DCT, keep the 8x8 lowest frequencies and set one bit per coefficient that lies above
their median. Re-encoding, resizing and shifting by a few pixels barely move those coefficients, so
near copies land a few bits apart while different drawings land about half the bits apart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

HASH_SIDE = 32  # the grayscale thumbnail the DCT runs on
LOW_SIDE = 8  # 8x8 low frequencies -> 64 bits


class UnreadableImage(ValueError):
    """A face file that cannot be used; `reason` is a short word for summaries (missing, empty, undecodable)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix D, so that D @ x is the DCT of a length-n signal x."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


def phash_from_gray(gray: np.ndarray) -> np.ndarray:
    """64-bit pHashes (uint64, shape (N,)) of a batch of 32x32 grayscale thumbnails, shape (N, 32, 32).

    Bit 63 is the DC coefficient, then row by row through the 8x8 block. The median is taken over
    the 63 AC coefficients: the DC term is far larger than all of them and would only shift it.
    """
    gray = np.asarray(gray, dtype=np.float64)
    if gray.ndim != 3 or gray.shape[1:] != (HASH_SIDE, HASH_SIDE):
        raise ValueError(f"expected (N, {HASH_SIDE}, {HASH_SIDE}) thumbnails, got {gray.shape}")
    d = dct_matrix(HASH_SIDE)[:LOW_SIDE]
    low = (d @ gray @ d.T).reshape(len(gray), LOW_SIDE * LOW_SIDE)
    median = np.median(low[:, 1:], axis=1, keepdims=True)
    bits = low > median
    packed = np.packbits(bits, axis=1, bitorder="big")  # 8 bytes per hash, most significant first
    return packed.view(">u8").reshape(-1).astype(np.uint64)


def thumbnail(bgr: np.ndarray) -> np.ndarray:
    """The 32x32 grayscale thumbnail the hash is computed from (area averaging, like a downscale)."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    return cv2.resize(gray, (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)


def pixel_digest(bgr: np.ndarray) -> str:
    """sha256 of the decoded pixels and their shape: equal for exact copies whatever the file encoding."""
    h = hashlib.sha256(f"{bgr.shape}|{bgr.dtype}".encode())
    h.update(np.ascontiguousarray(bgr).data)
    return h.hexdigest()


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Decode image bytes to a BGR uint8 array, or raise UnreadableImage."""
    if not data:
        raise UnreadableImage("empty", f"{name} has 0 bytes")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise UnreadableImage("undecodable", f"{name} is not an image OpenCV can read (corrupt or truncated?)")
    return bgr


def read_image(path: str | Path) -> tuple[bytes, np.ndarray]:
    """Read a file and decode it: (file bytes, BGR pixels), or raise UnreadableImage."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UnreadableImage("missing", f"{path} does not exist") from None
    except OSError as e:
        raise UnreadableImage("unreadable", f"{path}: {e.strerror or e}") from None
    return data, decode_image(data, str(path))


def to_hex(h: int | np.integer) -> str:
    """A 64-bit hash as 16 lowercase hex digits."""
    return f"{int(h):016x}"


def from_hex(text: str) -> int:
    """Inverse of to_hex."""
    return int(text, 16)


@dataclass(frozen=True)
class FaceHash:
    """The hashes of one face file; `file_sha256` lets a later run reuse them when the file is unchanged."""

    file_sha256: str
    phash: int
    pixel_sha256: str


def hash_files(paths: list[str], known: list[FaceHash | None] | None = None) -> list[FaceHash | UnreadableImage]:
    """Hash a batch of face files (one worker's share): a FaceHash, or the UnreadableImage error, per path.

    `known[i]`, when given, is a previous result for paths[i]; it is returned unchanged if the file's
    bytes still have the same sha256, so unchanged files are never decoded again.
    """
    known = known or [None] * len(paths)
    results: list[FaceHash | UnreadableImage | None] = [None] * len(paths)
    todo: list[int] = []
    thumbs: list[np.ndarray] = []
    digests: list[tuple[str, str]] = []
    for i, (path, prev) in enumerate(zip(paths, known)):
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            results[i] = UnreadableImage("missing", f"{path} does not exist")
            continue
        except OSError as e:
            results[i] = UnreadableImage("unreadable", f"{path}: {e.strerror or e}")
            continue
        file_sha = hashlib.sha256(data).hexdigest()
        if prev is not None and prev.file_sha256 == file_sha:
            results[i] = prev
            continue
        try:
            bgr = decode_image(data, str(path))
        except UnreadableImage as e:
            results[i] = e
            continue
        todo.append(i)
        thumbs.append(thumbnail(bgr))
        digests.append((file_sha, pixel_digest(bgr)))
    if todo:
        hashes = phash_from_gray(np.stack(thumbs))
        for i, h, (file_sha, pix) in zip(todo, hashes, digests):
            results[i] = FaceHash(file_sha, int(h), pix)
    return results  # type: ignore[return-value]
