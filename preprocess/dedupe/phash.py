"""Hashes of face crops: a 64-bit perceptual hash (DCT of a 32x32 grayscale) and a digest of the decoded pixels.

The same hashes of whole source images let dedupe find reposts of a picture (see preprocess/dedupe/image_pairs.py).

The perceptual hash follows the classic pHash recipe: shrink to 32x32 gray with area averaging,
take the 2-D DCT, keep 64 low frequencies and set one bit per coefficient that lies above their
median. One change, measured on drawn anime faces: the 64 are the 8 lowest vertical frequencies
times the 8 lowest *even* horizontal ones. Face crops are close to left-right symmetric, so their
odd horizontal frequencies (which measure asymmetry) are near zero and their bits flip with any
noise, and resized copies landed far apart with the plain 8x8 block; even columns keep them
close (see bench/RESULTS.md). A mirrored copy gets the same hash, which suits a face dataset
too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from anigan.shards import Member
from preprocess.imageio import MAX_FACE_PIXELS, Encoded, ImageRejected, load_face

HASH_SIDE = 32  # the grayscale thumbnail the DCT runs on
LOW_ROWS = 8  # vertical frequencies 0..7
LOW_COLUMNS = slice(0, 16, 2)  # horizontal frequencies 0, 2, ..., 14: the left-right symmetric part


def dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix D, so that D @ x is the DCT of a length-n signal x."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


def phash_from_gray(gray: np.ndarray) -> np.ndarray:
    """64-bit pHashes (uint64, shape (N,)) of a batch of 32x32 grayscale thumbnails, shape (N, 32, 32).

    Bit 63 is the DC coefficient, then row by row through the 8x8 block of kept frequencies. The
    median is taken over the 63 AC coefficients: the DC term is far larger than all of them and
    would only shift it. Every hash has 32 bits set, so distances between hashes are even.
    """
    gray = np.asarray(gray, dtype=np.float64)
    if gray.ndim != 3 or gray.shape[1:] != (HASH_SIDE, HASH_SIDE):
        raise ValueError(f"expected (N, {HASH_SIDE}, {HASH_SIDE}) thumbnails, got {gray.shape}")
    d = dct_matrix(HASH_SIDE)
    low = (d[:LOW_ROWS] @ gray @ d[LOW_COLUMNS].T).reshape(len(gray), 64)
    median = np.median(low[:, 1:], axis=1, keepdims=True)
    bits = low > median
    packed = np.packbits(bits, axis=1, bitorder="big")  # 8 bytes per hash, most significant first
    return packed.view(">u8").reshape(-1).astype(np.uint64)


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """The 32x32 grayscale thumbnail the hash is computed from (area averaging, like a downscale)."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)


def pixel_digest(rgb: np.ndarray) -> str:
    """sha256 of the decoded pixels and their shape: equal for exact copies whatever the file encoding."""
    h = hashlib.sha256(f"{rgb.shape}|{rgb.dtype}".encode())
    h.update(np.ascontiguousarray(rgb).data)
    return h.hexdigest()


def to_hex(h: int | np.integer) -> str:
    """A 64-bit hash as 16 lowercase hex digits."""
    return f"{int(h):016x}"


def from_hex(text: str) -> int:
    """Inverse of to_hex."""
    return int(text, 16)


@dataclass(frozen=True)
class FaceHash:
    """The hashes of one face file (or source image); `file_sha256` is the file's content ID (the
    crop's sha256, the image ID), so a later run reuses them for the same content without reading it."""

    file_sha256: str
    phash: int
    pixel_sha256: str
    width: int = 0  # of the decoded image; 0 in hashes cached before sizes were recorded
    height: int = 0


@dataclass(frozen=True)
class HashFailure:
    """Why a face file could not be hashed (a plain record: it crosses process boundaries)."""

    reason: str
    detail: str


@dataclass(frozen=True)
class Source:
    """A file to hash: its place in a shards folder, a name for messages, its content ID."""

    shards: str
    member: Member | None
    name: str
    content_id: str


def _read(source: Source) -> Encoded:
    if source.member is None:
        raise ImageRejected("missing_file", f"{source.name}: the manifest names no shard for it")
    try:
        with open(Path(source.shards) / source.member.shard, "rb") as f:
            f.seek(source.member.offset)
            data = f.read(source.member.bytes)
    except OSError as e:
        raise ImageRejected("missing_file", f"{source.name}: {e}") from None
    if len(data) != source.member.bytes:
        raise ImageRejected("missing_file", f"{source.name}: cut short in {source.member.shard}")
    return Encoded(data, source.name)


def hash_files(sources: list[Source], max_pixels: int = MAX_FACE_PIXELS) -> list[FaceHash | HashFailure]:
    """Hash a batch of files (one worker's share): a FaceHash, or a HashFailure, per source.

    Files of more than `max_pixels` are refused from their header (raise it to hash whole source
    images). Cached hashes never come here: the caller reuses them without reading the file.
    """
    results: list[FaceHash | HashFailure | None] = [None] * len(sources)
    todo: list[int] = []
    thumbs: list[np.ndarray] = []
    digests: list[tuple[str, str, int, int]] = []
    for i, source in enumerate(sources):
        try:
            rgb = load_face(_read(source), max_pixels)
        except ImageRejected as e:
            results[i] = HashFailure(e.reason, e.detail)
            continue
        todo.append(i)
        thumbs.append(thumbnail(rgb))
        digests.append((source.content_id, pixel_digest(rgb), rgb.shape[1], rgb.shape[0]))
    if todo:
        hashes = phash_from_gray(np.stack(thumbs))
        for i, h, (content_id, pix, width, height) in zip(todo, hashes, digests):
            results[i] = FaceHash(content_id, int(h), pix, width, height)
    return results  # type: ignore[return-value]
