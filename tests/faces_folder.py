"""Synthetic face folders for the dedupe and split tests: distinct drawings plus planted copies.

Follows the faces stage's output contract (`shards/faces-<NNNNNN>.tar` of `<face_id>.png`,
`manifest.jsonl` naming each crop's place) and writes a matching raw manifest, so the dedupe and
split stages can be tested without the detector.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from anigan.files import write_jsonl
from anigan.ids import face_id as make_face_id
from anigan.ids import sha256_hex
from anigan.shards import ShardWriter

HAIR = ("black", "blonde", "blue", "brown", "green", "pink", "purple", "red", "silver", "orange")
EYES = ("blue", "brown", "green", "purple", "red", "yellow", "aqua", "pink")
KINDS = ("exact", "jpeg", "resized", "shifted")


def drawing(seed: int, side: int = 160) -> np.ndarray:
    """A distinct face-like RGB picture: a flat background and a textured blob with two dark spots near the middle."""
    rng = np.random.default_rng(seed)
    img = np.empty((side, side, 3), np.uint8)
    img[:] = rng.integers(0, 256, 3)
    texture = cv2.resize(rng.integers(0, 256, (5, 5, 3)).astype(np.float32), (side, side), interpolation=cv2.INTER_CUBIC)
    mask = np.zeros((side, side), np.uint8)
    c = side // 2 + rng.integers(-8, 9, 2)
    axes = (int(side * rng.uniform(0.25, 0.38)), int(side * rng.uniform(0.25, 0.38)))
    cv2.ellipse(mask, (int(c[0]), int(c[1])), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    img[mask > 0] = texture.clip(0, 255).astype(np.uint8)[mask > 0]
    for _ in range(2):
        x, y = (int(v) for v in c + rng.integers(-25, 26, 2))
        cv2.circle(img, (x, y), int(rng.integers(8, 14)), tuple(int(v) for v in rng.integers(0, 80, 3)), -1)
    return cv2.GaussianBlur(img, (0, 0), 1.5)  # soft edges, like a drawing after a downscale


def crop(img: np.ndarray, dx: int = 0, dy: int = 0, size: int = 128) -> np.ndarray:
    """The centred size x size window of a drawing, moved by (dx, dy)."""
    m = (img.shape[0] - size) // 2
    return img[m + dy : m + dy + size, m + dx : m + dx + size].copy()


def plant(img: np.ndarray, kind: str, shift: int = 2) -> np.ndarray:
    """A copy of a drawing as a stage would see it after a repost: exact, re-encoded, resized or shifted."""
    face = crop(img)
    if kind == "exact":
        return face
    if kind == "jpeg":
        ok, data = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, 30])
        return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if kind == "resized":  # cut from a source at 60 % size, then scaled back up to the crop size
        small = cv2.resize(face, (77, 77), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (128, 128), interpolation=cv2.INTER_CUBIC)
    if kind == "shifted":
        return crop(img, shift, -shift)
    raise ValueError(kind)


@dataclass(frozen=True)
class Face:
    """One face to write: its pixels (RGB), the source image it came from, and its detector fields."""

    pixels: np.ndarray
    image_id: str
    crop_box: tuple[int, int, int, int] = (0, 0, 128, 128)
    score: float = 0.9
    source_size: tuple[int, int] = (400, 400)
    hair_color: str | None = "black"
    eye_color: str | None = "blue"
    png_level: int = 3

    @property
    def face_id(self) -> str:
        return make_face_id(self.image_id, self.crop_box)


def image_id_for(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def write_faces(root: Path, faces: list[Face], raw_manifest: bool = True, shard_size: int = 8) -> Path:
    """Write `root/faces/{shards,manifest.jsonl}` (and `root/raw/manifest.jsonl`); returns the faces folder."""
    faces_dir = root / "faces"
    records, sources = [], {}
    writer = ShardWriter(faces_dir / "shards", "faces", shard_size)
    for f in faces:
        bgr = cv2.cvtColor(f.pixels, cv2.COLOR_RGB2BGR)
        ok, png = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, f.png_level])
        assert ok
        data = png.tobytes()
        member = writer.add(f"{f.face_id}.png", data)
        x, y, w, h = f.crop_box
        records.append(
            {
                "face_id": f.face_id,
                "image_id": f.image_id,
                "box": [x + w // 8, y + h // 8, w * 3 // 4, h * 3 // 4],
                "crop": list(f.crop_box),
                "score": f.score,
                "detector": "synthetic",
                "hair_color": f.hair_color,
                "eye_color": f.eye_color,
                **member.fields(),
                "file_sha256": sha256_hex(data),
            }
        )
        sources[f.image_id] = {"image_id": f.image_id, "width": f.source_size[0], "height": f.source_size[1]}
    writer.close()
    write_jsonl(faces_dir / "manifest.jsonl", records)
    if raw_manifest:
        write_jsonl(root / "raw" / "manifest.jsonl", list(sources.values()))
    return faces_dir


def crop_bytes(root: Path, face_id: str) -> bytes:
    """The bytes of one face's crop, read from the shard place its manifest record names."""
    from anigan.files import read_jsonl
    from anigan.shards import Member, read_member

    record = next(r for r in read_jsonl(root / "faces" / "manifest.jsonl") if r["face_id"] == face_id)
    return read_member(root / "faces" / "shards", Member.of(record))


def planted_set(n_distinct: int, seed: int = 0, copies_per_kind: int = 3, shift: int = 1) -> tuple[list[Face], dict[str, str]]:
    """n distinct drawings, each from its own image, plus planted copies of some of them (each from its own image).

    Returns the faces and, for every planted copy, the face_id of its original.
    """
    rng = np.random.default_rng(seed)
    originals = []
    for k in range(n_distinct):
        img = drawing(seed * 100_003 + k)
        originals.append(
            (img, Face(crop(img), image_id_for(f"original-{seed}-{k}"), source_size=(800, 800), hair_color=HAIR[k % len(HAIR)], eye_color=EYES[k % len(EYES)], score=0.8))
        )
    faces = [f for _, f in originals]
    copy_of: dict[str, str] = {}
    chosen = rng.choice(n_distinct, size=min(n_distinct, copies_per_kind * len(KINDS)), replace=False)
    for j, k in enumerate(chosen):
        kind = KINDS[j % len(KINDS)]
        img, original = originals[int(k)]
        copy = Face(
            plant(img, kind, shift),
            image_id_for(f"copy-{seed}-{k}-{kind}"),
            score=0.95,  # a better score than the original: the source size must still win
            source_size=(240, 240) if kind == "resized" else (400, 400),
            hair_color=original.hair_color,
            eye_color=original.eye_color,
            png_level=9 if kind == "exact" else 3,  # other file bytes, same pixels
        )
        faces.append(copy)
        copy_of[copy.face_id] = original.face_id
    return faces, copy_of


def pad_records(path: Path, pad: int) -> int:
    """Give every record of a JSON Lines manifest a field of `pad` bytes that no stage reads; returns the file's new size.

    A stage that streams the manifest holds a line at a time; one that keeps its records holds them all.
    """
    from anigan.files import read_jsonl, write_jsonl

    write_jsonl(path, [r | {"padding": "x" * pad} for r in read_jsonl(path)])
    return path.stat().st_size


def traced_peak(fn):
    """fn()'s result and the peak of the memory Python and numpy allocated while it ran (tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak
