"""Content IDs: images are named by the sha256 of their bytes, faces by image ID and crop box."""

import hashlib
import os
from collections.abc import Sequence


def sha256_hex(data: bytes) -> str:
    """The image ID of a downloaded file: sha256 of its bytes, lowercase hex."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read in chunks (packed arrays are gigabytes), lowercase hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def face_id(image_id: str, crop: Sequence[int]) -> str:
    """A short stable ID for a face: a hash of its source image ID and integer crop box [x, y, w, h].

    Stable across runs and machines; `image_id[:8]` is kept as a prefix so a face can be traced to
    its image by eye.
    """
    x, y, w, h = (int(v) for v in crop)
    digest = hashlib.sha256(f"{image_id}:{x},{y},{w},{h}".encode()).hexdigest()
    return f"{image_id[:8]}-{digest[:12]}"


def stable_fraction(key: str, salt: str = "") -> float:
    """Map a string to a number in [0, 1) that never changes across runs, machines or Python versions."""
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
