"""The demo booru's posts: scenes of drawn anime faces plus the bad files real crawls meet.

`generate_site(seed, posts)` is deterministic: the same seed gives the same bytes. Each post draws
from its own random stream (seed, post id), so a site with more posts keeps the earlier ones.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import zlib
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from anigan.colors import EYE_COLORS, HAIR_COLORS
from anigan.ids import sha256_hex
from crawler.demo import defects as planted
from crawler.demo.drawing import EXTENT, FaceStyle, draw_face, face_box, face_extent

RATINGS = ("general", "sensitive", "questionable", "explicit")
RATING_WEIGHTS = (0.7, 0.2, 0.07, 0.03)

# Planted edge cases, in the order they are spread through the id range.
EDGE_KINDS = (
    "exact_duplicate",
    "near_duplicate_jpeg",
    "no_face",
    "truncated",
    "near_duplicate_resized",
    "too_small",
    "zero_byte",
    "grayscale",
    "near_duplicate_shifted",
    "html",
    "rgba",
    "bomb",
    "cmyk",
    "animated_gif",
    "md5_mismatch",
    "forbidden",
)
# Below this many posts there is no room for every edge case; only the first few are planted.
POSTS_FOR_ALL_EDGE_CASES = 40
# Duplicates copy a scene with a face at least this big: still 48 px (the faces stage's default
# floor) in the copy resized to 75 %, so every planted copy can be found and grouped.
COPY_FACE_SIDE = 64
BOMB_SIDE = 40_000
COPYRIGHT_TAG = "anigan's_demo_girls"
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif"}


@dataclass(frozen=True)
class DemoFace:
    """One drawn face: its box [x, y, w, h] in the served image and its colours (tag words)."""

    box: tuple[int, int, int, int]
    hair_color: str
    eye_color: str
    defect: str | None = None  # a flaw planted on purpose (crawler/demo/defects.py), or None


@dataclass(frozen=True)
class DemoPost:
    """One post as the booru describes it, with the file it serves and the truth about it."""

    post_id: int
    kind: str
    data: bytes
    ext: str
    content_type: str
    md5: str
    width: int
    height: int
    tags: tuple[str, ...]
    rating: str
    faces: tuple[DemoFace, ...] = ()
    duplicate_of: int | None = None
    forbidden: bool = False

    @property
    def image_id(self) -> str:
        return sha256_hex(self.data)

    def ground_truth(self) -> dict:
        """The record served at /anigan/ground_truth.jsonl."""
        return {
            "post_id": self.post_id,
            "image_id": self.image_id,
            "md5": self.md5,
            "kind": self.kind,
            "duplicate_of": self.duplicate_of,
            "faces": [_face_truth(f) for f in self.faces],
        }


def _face_truth(f: DemoFace) -> dict:
    truth = {"box": list(f.box), "hair_color": f.hair_color, "eye_color": f.eye_color}
    if f.defect is not None:
        truth["defect"] = f.defect
    return truth


@dataclass(frozen=True)
class DemoSite:
    seed: int
    posts: tuple[DemoPost, ...]
    _index: dict[int, DemoPost] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index.update({p.post_id: p for p in self.posts})

    def by_id(self, post_id: int) -> DemoPost:
        return self._index[post_id]

    def ground_truth(self) -> list[dict]:
        return [p.ground_truth() for p in self.posts]


@dataclass(frozen=True)
class Scene:
    """A drawn picture before encoding: BGR pixels and its faces."""

    pixels: np.ndarray
    faces: tuple[DemoFace, ...]
    background: str
    placed: tuple[tuple[float, float, float], ...] = ()  # each face's drawing centre and radius


def _post_rng(seed: int, post_id: int) -> np.random.Generator:
    return np.random.default_rng([seed, post_id])


def _background(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, str]:
    base = rng.integers(110, 256, 3)
    img = np.empty((height, width, 3), np.uint8)
    style = rng.choice(["simple", "gradient", "shapes"], p=[0.4, 0.35, 0.25])
    if style == "gradient":
        other = rng.integers(110, 256, 3)
        t = np.linspace(0.0, 1.0, height)[:, None, None]
        img[:] = (base * (1 - t) + other * t).astype(np.uint8)
    else:
        img[:] = base
    if style == "shapes":
        for _ in range(int(rng.integers(3, 8))):
            colour = tuple(int(c) for c in rng.integers(110, 256, 3))
            centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            if rng.random() < 0.5:
                cv2.circle(img, centre, int(rng.integers(10, 60)), colour, -1, cv2.LINE_AA)
            else:
                size = rng.integers(10, 80, 2)
                cv2.rectangle(img, centre, (centre[0] + int(size[0]), centre[1] + int(size[1])), colour, -1)
    return img, {"simple": "simple_background", "gradient": "gradient_background", "shapes": "patterned_background"}[style]


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


def draw_scene(rng: np.random.Generator, face_count: int, min_radius: float = 0.0, max_radius: float = math.inf) -> Scene:
    """A random background with `face_count` non-overlapping faces (fewer if they do not fit).

    Face radii are mostly 22-110 px with some small ones (14-22) that detectors may miss;
    `min_radius` raises the floor, for posts whose faces must be found.
    """
    width, height = (int(v) for v in rng.integers(256, 641, 2))
    pixels, background = _background(rng, height, width)
    placed: list[tuple[float, float, float]] = []
    for _ in range(face_count):
        for _attempt in range(60):
            r = float(rng.uniform(22, 110)) if rng.random() < 0.85 else float(rng.uniform(14, 22))
            r = min(max(r, min_radius), max_radius)
            left, up, right, down = (v * r for v in EXTENT)
            if width <= left + right or height <= up + down:
                continue
            cx, cy = float(rng.uniform(left, width - right)), float(rng.uniform(up, height - down))
            extent = face_extent(cx, cy, r)
            if all(not _overlaps(extent, face_extent(*p)) for p in placed):
                placed.append((cx, cy, r))
                break
    faces = []
    for cx, cy, r in placed:
        hair = str(rng.choice(list(HAIR_COLORS)))
        eyes = str(rng.choice(list(EYE_COLORS)))
        style = FaceStyle.random(rng)
        draw_face(pixels, cx, cy, r, hair, eyes, style)
        faces.append(DemoFace(face_box(cx, cy, r, style), hair, eyes))
    return Scene(pixels, tuple(faces), background, tuple(placed))


def scene_tags(scene: Scene) -> tuple[str, ...]:
    """Danbooru-style tags for what was drawn."""
    n = len(scene.faces)
    tags = {scene.background}
    if n == 0:
        tags.add("no_humans")
    elif n == 1:
        tags.update({"1girl", "solo"})
        if scene.faces[0].box[2] >= 0.4 * min(scene.pixels.shape[:2]):
            tags.add("portrait")
    else:
        tags.update({f"{n}girls", "multiple_girls"})
    if n:
        # A copyright tag with an apostrophe, as real ones have (Gelbooru sends it escaped).
        tags.add(COPYRIGHT_TAG)
    for f in scene.faces:
        tags.update({f"{f.hair_color}_hair", f"{f.eye_color}_eyes"})
    return tuple(sorted(tags))


def _pil(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(pixels[:, :, ::-1]))


def encode(image: Image.Image, ext: str, **options) -> bytes:
    """Encode with Pillow, deterministically (no timestamps or random metadata)."""
    buf = io.BytesIO()
    image.save(buf, format={"png": "PNG", "jpg": "JPEG", "gif": "GIF"}[ext], **options)
    return buf.getvalue()


def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A tiny PNG whose header claims side x side pixels: decoding it would need gigabytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _face_count(rng: np.random.Generator) -> int:
    return int(rng.choice([0, 1, 2, 3], p=[0.1, 0.55, 0.25, 0.1]))


def _post(post_id, kind, data, ext, scene, tags, rating, *, md5=None, size=None, faces=None, duplicate_of=None, forbidden=False) -> DemoPost:
    height, width = scene.pixels.shape[:2]
    width, height = size or (width, height)
    return DemoPost(
        post_id=post_id,
        kind=kind,
        data=data,
        ext=ext,
        content_type=CONTENT_TYPES.get(ext, "image/jpeg"),
        md5=md5 or _md5(data),
        width=width,
        height=height,
        tags=tags,
        rating=rating,
        faces=scene.faces if faces is None else faces,
        duplicate_of=duplicate_of,
        forbidden=forbidden,
    )


def _scene_post(post_id: int, rng: np.random.Generator, face_count: int | None = None, min_radius: float = 0.0) -> tuple[DemoPost, Scene]:
    scene = draw_scene(rng, _face_count(rng) if face_count is None else face_count, min_radius)
    ext = "jpg" if rng.random() < 0.6 else "png"
    data = encode(_pil(scene.pixels), ext, quality=92) if ext == "jpg" else encode(_pil(scene.pixels), ext)
    rating = str(rng.choice(RATINGS, p=RATING_WEIGHTS))
    kind = "scene" if scene.faces else "no_face"
    return _post(post_id, kind, data, ext, scene, scene_tags(scene), rating), scene


def _shift(pixels: np.ndarray, dx: int, dy: int) -> np.ndarray:
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(pixels, matrix, (pixels.shape[1], pixels.shape[0]), borderMode=cv2.BORDER_REPLICATE)


def _edge_post(kind: str, post_id: int, rng: np.random.Generator, base: tuple[DemoPost, Scene]) -> DemoPost:
    """One planted edge case; near/exact duplicates copy `base`, the newest scene with a face of COPY_FACE_SIDE px or more."""
    base_post, base_scene = base
    if kind == "exact_duplicate":
        return _post(post_id, kind, base_post.data, base_post.ext, base_scene, base_post.tags, base_post.rating, duplicate_of=base_post.post_id)
    if kind == "near_duplicate_jpeg":
        data = encode(_pil(base_scene.pixels), "jpg", quality=25)
        return _post(post_id, kind, data, "jpg", base_scene, base_post.tags, base_post.rating, duplicate_of=base_post.post_id)
    if kind == "near_duplicate_resized":
        h, w = base_scene.pixels.shape[:2]
        scale = 0.75
        pixels = cv2.resize(base_scene.pixels, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        faces = tuple(DemoFace(tuple(round(v * scale) for v in f.box), f.hair_color, f.eye_color) for f in base_scene.faces)
        scene = Scene(pixels, faces, base_scene.background)
        return _post(post_id, kind, encode(_pil(pixels), "png"), "png", scene, base_post.tags, base_post.rating, duplicate_of=base_post.post_id)
    if kind == "near_duplicate_shifted":
        dx, dy = 4, 3
        pixels = _shift(base_scene.pixels, dx, dy)
        faces = tuple(DemoFace((f.box[0] + dx, f.box[1] + dy, f.box[2], f.box[3]), f.hair_color, f.eye_color) for f in base_scene.faces)
        scene = Scene(pixels, faces, base_scene.background)
        return _post(post_id, kind, encode(_pil(pixels), "png"), "png", scene, base_post.tags, base_post.rating, duplicate_of=base_post.post_id)
    if kind == "no_face":
        post, _ = _scene_post(post_id, rng, face_count=0)
        return post
    if kind == "too_small":
        pixels, background = _background(rng, 40, 48)
        scene = Scene(pixels, (), background)
        return _post(post_id, kind, encode(_pil(pixels), "png"), "png", scene, (background, "no_humans"), "general")
    if kind == "html":
        page = b"<!DOCTYPE html>\n<html><head><title>Just a moment...</title></head><body>Checking your browser.</body></html>\n"
        scene = Scene(np.zeros((480, 640, 3), np.uint8), (), "")
        # The API promises a JPEG; the server sends an HTML page with an image content type.
        return _post(post_id, kind, page, "jpg", scene, ("1girl", "solo"), "general", md5=_md5(page + b"jpeg"), faces=())
    if kind == "bomb":
        data = bomb_png()
        scene = Scene(np.zeros((1, 1, 3), np.uint8), (), "")
        return _post(post_id, kind, data, "png", scene, ("absurdres", "1girl"), "general", size=(BOMB_SIDE, BOMB_SIDE), faces=())

    # The rest re-encode a fresh scene with one or two faces large enough to be found reliably,
    # so a missed face there means the format was mishandled.
    post, scene = _scene_post(post_id, rng, face_count=int(rng.integers(1, 3)), min_radius=40.0)
    pil = _pil(scene.pixels)
    if kind in ("truncated", "zero_byte"):
        full = encode(pil, "jpg", quality=92)
        data = full[: len(full) * 6 // 10] if kind == "truncated" else b""
        return _post(post_id, kind, data, "jpg", scene, post.tags, post.rating, md5=_md5(full))
    if kind == "grayscale":
        return _post(post_id, kind, encode(pil.convert("L"), "png"), "png", scene, post.tags + ("greyscale", "monochrome"), post.rating)
    if kind == "rgba":
        rgba = pil.convert("RGBA")
        alpha = np.full(scene.pixels.shape[:2], 255, np.uint8)
        alpha[:, :8] = 0  # a transparent strip, as on cut-out art
        rgba.putalpha(Image.fromarray(alpha))
        return _post(post_id, kind, encode(rgba, "png"), "png", scene, post.tags + ("transparent_background",), post.rating)
    if kind == "cmyk":
        return _post(post_id, kind, encode(pil.convert("CMYK"), "jpg", quality=92), "jpg", scene, post.tags, post.rating)
    if kind == "animated_gif":
        frames = [_pil(_shift(scene.pixels, 0, -2 * i)) for i in range(3)]
        data = encode(frames[0], "gif", save_all=True, append_images=frames[1:], duration=120, loop=0)
        return _post(post_id, kind, data, "gif", scene, post.tags + ("animated", "animated_gif"), post.rating)
    if kind == "md5_mismatch":
        return _post(post_id, kind, post.data, post.ext, scene, post.tags, post.rating, md5=_md5(post.data + b"tampered"))
    if kind == "forbidden":
        return _post(post_id, "scene", post.data, post.ext, scene, post.tags, post.rating, forbidden=True)
    raise ValueError(f"unknown edge case kind {kind!r}")


def _defect_post(post_id: int, rng: np.random.Generator, defect: str, defect_rng: np.random.Generator) -> DemoPost:
    """A scene post with `defect` planted on every face (crawler/demo/defects.py), the truth saying so."""
    if defect == "tiny":
        side = float(defect_rng.uniform(*planted.TINY_SIDES))
        radius = side / face_box(0, 0, 100.0)[2] * 100.0  # the plain template's box side per radius
        scene = draw_scene(rng, int(rng.integers(1, 4)), min_radius=radius, max_radius=radius)
    else:
        scene = draw_scene(rng, 1 if defect == "cut_off" else int(rng.integers(1, 3)), min_radius=40.0)
    pixels, faces = scene.pixels, scene.faces
    extra_tags: tuple[str, ...] = ()
    if defect == "blurred":
        pixels = planted.blur_faces(pixels, [face_extent(*p) for p in scene.placed], [p[2] for p in scene.placed], defect_rng)
    elif defect == "monochrome":
        pixels = planted.to_monochrome(pixels, defect_rng)
        if defect_rng.random() < 0.5:
            extra_tags = ("greyscale", "monochrome")
    elif defect == "text":
        for f in faces:
            pixels = planted.write_over(pixels, f.box, defect_rng)
        extra_tags = ("text",)
    elif defect == "cut_off" and faces:
        pixels, dx, dy, _share = planted.cut_through(pixels, faces[0].box, 0.25, defect_rng)
        height, width = pixels.shape[:2]
        x, y, w, h = faces[0].box
        faces = (DemoFace(planted.clip_box((x + dx, y + dy, w, h), width, height), faces[0].hair_color, faces[0].eye_color),)
    faces = tuple(DemoFace(f.box, f.hair_color, f.eye_color, defect) for f in faces)
    scene = Scene(pixels, faces, scene.background, scene.placed)
    ext = "jpg" if rng.random() < 0.6 else "png"
    data = encode(_pil(pixels), ext, quality=92) if ext == "jpg" else encode(_pil(pixels), ext)
    rating = str(rng.choice(RATINGS, p=RATING_WEIGHTS))
    tags = tuple(sorted(set(scene_tags(scene)) | set(extra_tags)))
    return _post(post_id, "scene", data, ext, scene, tags, rating)


def defect_slots(seed: int, posts: int, share: float, taken: dict[int, str]) -> dict[int, str]:
    """Post id -> planted defect for about `share` of the ordinary posts, each kind equally likely.

    Drawn from streams of their own, so the posts without a defect are the same bytes as on a
    site generated with no defects at all, and a site with more posts keeps the earlier ones.
    """
    if share <= 0:
        return {}
    slots = {}
    for pid in range(2, posts + 1):
        draw = np.random.default_rng([seed, pid, 17]).random(2)
        if pid not in taken and draw[0] < share:
            slots[pid] = planted.DEFECTS[int(draw[1] * len(planted.DEFECTS))]
    return slots


def edge_case_slots(posts: int) -> dict[int, str]:
    """Post id -> edge case kind, spread evenly; with few posts only the first kinds fit."""
    count = len(EDGE_KINDS) if posts >= POSTS_FOR_ALL_EDGE_CASES else max(0, posts // 3 - 1)
    slots: dict[int, str] = {}
    for i, kind in enumerate(EDGE_KINDS[:count]):
        slots[round((i + 1) * posts / (count + 1)) + 1] = kind
    return {pid: kind for pid, kind in slots.items() if 2 <= pid <= posts}


def generate_site(seed: int = 0, posts: int = 120, defects: float = 0.0) -> DemoSite:
    """All posts of the demo booru, ids 1..posts; deterministic in `seed`.

    `defects` is the share of ordinary posts given a planted defect (crawler/demo/defects.py).
    """
    slots = edge_case_slots(posts)
    flawed = defect_slots(seed, posts, defects, slots)
    result: list[DemoPost] = []
    last_with_face: tuple[DemoPost, Scene] | None = None  # what duplicates copy
    for post_id in range(1, posts + 1):
        rng = _post_rng(seed, post_id)
        kind = slots.get(post_id)
        if post_id in flawed:
            post = _defect_post(post_id, rng, flawed[post_id], np.random.default_rng([seed, post_id, 18]))
        elif kind is None or last_with_face is None:
            first = post_id == 1  # one face big enough to copy, so every planted kind has a source
            post, scene = _scene_post(post_id, rng, face_count=1 if first else None, min_radius=56.0 if first else 0.0)
            if any(min(f.box[2:]) >= COPY_FACE_SIDE for f in scene.faces):
                last_with_face = (post, scene)
        else:
            post = _edge_post(kind, post_id, rng, last_with_face)
        result.append(post)
    return DemoSite(seed=seed, posts=tuple(result))


def portrait(seed: int = 0, size: int = 320) -> Image.Image:
    """One face centred on a flat background, as a PIL RGB image: the self-check picture for animeface.

    Seed 0 draws the plain template (`FaceStyle()`, whose box `face_box` gives without a style);
    other seeds draw a random style.
    """
    pixels = np.full((size, size, 3), 235, np.uint8)
    style = FaceStyle.random(np.random.default_rng(seed)) if seed else None
    draw_face(pixels, size / 2, size * 0.48, size * 0.25, "brown", "blue", style)
    return _pil(pixels)
