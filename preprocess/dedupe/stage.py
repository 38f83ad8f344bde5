"""`anigan dedupe`: group exact and near-duplicate faces and keep one face per group.

Exact duplicates have identical decoded pixels (however the files were encoded); near duplicates
have 64-bit perceptual hashes at most `dedupe.max_distance` bits apart (re-encoded, resized or
slightly shifted copies). A third relation catches reposts whose faces the detector boxed a little
differently: source images whose whole-picture pHashes are at most `dedupe.image_max_distance`
bits apart have their faces paired by box position (preprocess/dedupe/image_pairs.py). All relations are
joined into groups, and each group keeps one face: the one from the largest source image (width x
height in the raw manifest), then with the largest face box, then the highest detector score, then
the smallest face ID.

Reads `<faces>/manifest.jsonl` and the crop shards it names, and from `<raw>` the `manifest.jsonl`
(source sizes, shard places) and the source images of the faces, when present. Writes
`<dedup>/manifest.jsonl` (every face: phash, group_id, kept, dup_kind), `<dedup>/rejects.jsonl`
(faces whose file cannot be used), `<dedup>/dedupe.json` (summary) and `<dedup>/hashes.jsonl`, a
cache of face and source image hashes keyed by content ID (a crop's `file_sha256`, an image's
`image_id`): a killed or repeated run hashes only content it has not seen, and never reads a
file to check a cached hash.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import re
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from anigan.errors import UserError
from anigan.files import append_jsonl, read_jsonl, write_json, write_jsonl
from anigan.params import Params
from anigan.workers import resolve_workers
from preprocess.dedupe.hamming_index import iter_distinct_pairs, near_pairs, popcount64
from preprocess.dedupe.image_pairs import faces_of_image_pairs, group_by_image
from anigan.shards import Member
from preprocess.dedupe.phash import FaceHash, HashFailure, Source, from_hex, hash_files, to_hex
from preprocess.groups import components, same_key_edges
from preprocess.imageio import MAX_FACE_PIXELS

log = logging.getLogger(__name__)

BATCH = 256  # files per hashing task: big enough for a vectorised DCT, small enough to show progress
HASH_VERSION = "phash-dct32-8x8-v1"  # bump when the hash recipe changes: cached hashes are then recomputed
_SAFE_FACE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# dup_kind of a face that is not kept: same pixels as the kept face, pHash within max_distance of a
# group member, or joined only through a near-duplicate source image
DUP_KINDS = ("exact", "near", "near_image")


@dataclass(frozen=True)
class DedupeSummary:
    """What `anigan dedupe` did; `metrics()` is what goes to dedupe.json."""

    faces: int
    kept: int
    removed_by_kind: dict[str, int]
    duplicate_groups: int
    largest_group: int
    skipped: dict[str, int]
    max_distance: int
    image_max_distance: int = 0
    box_iou: float = 0.0
    images: dict[str, Any] | None = None  # source images: hashed, near_pairs, skipped by reason
    hashes_reused: int = 0
    output: str = ""

    @property
    def removed(self) -> int:
        return sum(self.removed_by_kind.values())

    def metrics(self) -> dict[str, Any]:
        """The deterministic part of the summary (no timings, no cache counts), for DVC metrics."""
        return {
            "faces": self.faces,
            "groups": self.kept,
            "kept": self.kept,
            "removed": self.removed,
            "removed_by_kind": dict(self.removed_by_kind),
            "duplicate_groups": self.duplicate_groups,
            "largest_group": self.largest_group,
            "skipped": dict(self.skipped),
            "max_distance": self.max_distance,
            "image_max_distance": self.image_max_distance,
            "box_iou": self.box_iou,
            "images": dict(self.images or {}),
        }


def load_face_records(faces_dir: Path) -> tuple[list[dict], list[dict]]:
    """The faces manifest as records sorted by face_id (first record of a repeated ID wins), and rejects."""
    manifest = faces_dir / "manifest.jsonl"
    if not manifest.exists():
        raise UserError(f"{manifest} not found: run `anigan faces` first")
    faces: dict[str, dict] = {}
    rejects: list[dict] = []
    for record in read_jsonl(manifest):
        fid = record.get("face_id")
        if not isinstance(fid, str) or not _SAFE_FACE_ID.match(fid):
            rejects.append({"face_id": fid, "reason": "bad_face_id", "detail": "face_id missing or not a plain file name"})
            continue
        if fid in faces:
            log.warning("face %s is listed twice in %s; using the first record", fid, manifest)
            continue
        faces[fid] = record
    return [faces[k] for k in sorted(faces)], rejects


def load_sources(raw_manifest: Path, image_ids: set[str]) -> tuple[dict[str, int], dict[str, Member]]:
    """From the raw manifest, for the images of `image_ids`: width x height, and where the image
    lies in the raw shards; empty when there is no manifest (all sources rank equal)."""
    if not raw_manifest.exists():
        log.info("%s not found: representatives are chosen by face box, score and ID only", raw_manifest)
        return {}, {}
    pixels: dict[str, int] = {}
    places: dict[str, Member] = {}
    for record in read_jsonl(raw_manifest):
        image_id = record.get("image_id")
        if image_id not in image_ids or image_id in places:
            continue
        if (member := Member.of(record)) is not None:
            places[image_id] = member
        try:
            pixels[image_id] = int(record["width"]) * int(record["height"])
        except (KeyError, TypeError, ValueError):
            continue
    return pixels, places


def load_hash_cache(path: Path, key: str = "face_id") -> dict[str, FaceHash]:
    """face_id (or, with key="image_id", source image ID) -> the last hashes recorded for it with the current recipe."""
    cache = {}
    for record in read_jsonl(path, missing_ok=True):
        if record.get("hash") == HASH_VERSION and key in record:
            try:
                width, height = record.get("size") or (0, 0)
                cache[record[key]] = FaceHash(record["file_sha256"], from_hex(record["phash"]), record["pixel_sha256"], width, height)
            except (KeyError, TypeError, ValueError):
                continue  # a damaged cache line: that file is simply hashed again
    return cache


def _cache_record(key: str, name: str, h: FaceHash) -> dict:
    return {key: name, "hash": HASH_VERSION, "file_sha256": h.file_sha256, "phash": to_hex(h.phash), "pixel_sha256": h.pixel_sha256, "size": [h.width, h.height]}


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@contextmanager
def hashing_pool(workers: int, files: int) -> Iterator[Executor | None]:
    """Worker processes for hashing `files` files in batches; None when one process does."""
    batches = -(-files // BATCH)
    if workers <= 1 or batches <= 1:
        yield None
        return
    # spawn: a fresh interpreter per worker, safe whatever threads the parent runs (progress bars)
    pool = ProcessPoolExecutor(max_workers=min(workers, batches), mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


def hash_batches(
    paths: list[Source],
    known: list[FaceHash | None],
    pool: Executor | None,
    on_batch: Callable[[int, list[FaceHash | HashFailure]], None],
    max_pixels: int = MAX_FACE_PIXELS,
) -> list[FaceHash | HashFailure]:
    """Hash files in batches, in `pool` (or here); `on_batch(start, results)` sees each batch as it lands."""
    results: list[FaceHash | HashFailure] = []
    work = partial(hash_files, max_pixels=max_pixels)
    path_batches, known_batches = list(_batches(paths, BATCH)), list(_batches(known, BATCH))
    mapped: Iterator = map(work, path_batches, known_batches) if pool is None else pool.map(work, path_batches, known_batches)
    for batch in mapped:
        on_batch(len(results), batch)
        results.extend(batch)
    return results


def hash_cached(
    key: str,
    names: list[str],
    paths: list[Source],
    cache_path: Path,
    pool: Executor | None,
    progress: Callable[[int], None],
    max_pixels: int = MAX_FACE_PIXELS,
) -> tuple[list[FaceHash | HashFailure], int]:
    """Hash files named `names` (face or image IDs, recorded under `key`), reusing and extending the cache; also how many were reused.

    A cached hash is reused when it was made from the same content ID: no file is read to check it.
    """
    cache = load_hash_cache(cache_path, key)
    known = [h if (h := cache.get(n)) is not None and h.file_sha256 == p.content_id else None for n, p in zip(names, paths)]
    del cache
    reused = 0

    def on_batch(start: int, batch: list[FaceHash | HashFailure]) -> None:
        nonlocal reused
        fresh = []
        for k, result in enumerate(batch):
            if isinstance(result, FaceHash):
                if result == known[start + k]:
                    reused += 1
                else:
                    fresh.append(_cache_record(key, names[start + k], result))
        append_jsonl(cache_path, fresh)  # a killed run keeps every finished batch
        progress(start + len(batch))

    return hash_batches(paths, known, pool, on_batch, max_pixels), reused


def group_faces(phashes: np.ndarray, pixel_shas: list[str], max_distance: int, workers: int = 1) -> np.ndarray:
    """Each face's group (the index of its smallest member): exact pixel copies and pHashes within max_distance."""
    distinct, inverse = np.unique(phashes, return_inverse=True)
    # one representative face per distinct hash carries that hash's near pairs
    first_of = np.full(len(distinct), len(phashes), dtype=np.int64)
    np.minimum.at(first_of, inverse, np.arange(len(phashes)))

    def edges() -> Iterator[np.ndarray]:
        yield same_key_edges(pixel_shas)
        yield same_key_edges(inverse.tolist())
        for pairs in iter_distinct_pairs(distinct, max_distance, workers=workers):
            yield first_of[pairs]

    return components(len(phashes), edges())


def representative_rank(record: dict, source_pixels: dict[str, int]) -> tuple:
    """Sort key: the first face of a group by this key is kept (largest source, box, score; then smallest ID)."""
    box = record.get("box") or [0, 0, 0, 0]
    try:
        box_area = int(box[2]) * int(box[3])
    except (IndexError, TypeError, ValueError):
        box_area = 0
    score = record.get("score")
    score = float(score) if isinstance(score, (int, float)) else 0.0
    return (-source_pixels.get(record.get("image_id"), 0), -box_area, -score, record["face_id"])


def source_image_edges(
    params: Params, hashed: list[tuple[dict, FaceHash]], places: dict[str, Member], pool: Executor | None, progress: Callable[[int], None]
) -> tuple[np.ndarray, dict[str, FaceHash], dict[str, Any], int]:
    """Face pairs joined through near-duplicate source images; also the image hashes, a summary and how many hashes were reused.

    Hashes the source image of every face (its raw shard member, at most faces.max_pixels),
    finds image pairs within dedupe.image_max_distance and pairs their faces by box position.
    """
    image_ids = sorted({r["image_id"] for r, _ in hashed if isinstance(r.get("image_id"), str) and _SAFE_FACE_ID.match(r["image_id"])})
    shards = str(Path(params.paths.raw) / "shards")  # the crawl's (docs/architecture.md)
    found = [i for i in image_ids if i in places and (Path(shards) / places[i].shard).is_file()]
    skipped = Counter({"missing_file": len(image_ids) - len(found)} if len(found) < len(image_ids) else {})
    results, reused = hash_cached(
        "image_id", found, [Source(shards, places[i], i, i) for i in found], Path(params.paths.dedup) / "hashes.jsonl", pool, progress, params.faces.max_pixels
    )
    hashes = {i: h for i, h in zip(found, results) if isinstance(h, FaceHash)}
    skipped.update(h.reason for h in results if isinstance(h, HashFailure))
    if skipped:
        log.warning(
            "%d of %d source images could not be hashed (%s); their faces are grouped by their own hashes only",
            sum(skipped.values()), len(image_ids), ", ".join(f"{v} {k}" for k, v in sorted(skipped.items())),
        )
    names = list(hashes)
    pairs = near_pairs(np.array([hashes[i].phash for i in names], dtype=np.uint64), params.dedupe.image_max_distance)
    faces_by_image = group_by_image([r.get("image_id") for r, _ in hashed], [r.get("box") for r, _ in hashed], {n: k for k, n in enumerate(names)})
    sizes = [(hashes[i].width, hashes[i].height) for i in names]
    edges = faces_of_image_pairs(pairs, faces_by_image, sizes, params.dedupe.box_iou)
    summary = {"hashed": len(hashes), "near_pairs": len(pairs), "faces_joined": len(edges), "skipped": dict(sorted(skipped.items()))}
    return edges, hashes, summary, reused


def run_dedupe(params: Params, progress: Callable[[int, int], None] | None = None) -> DedupeSummary:
    """Hash, group and choose representatives for every face; write the dedup folder. `progress(done, total)` per batch."""
    faces_dir, out = Path(params.paths.faces), Path(params.paths.dedup)
    dp = params.dedupe
    records, rejects = load_face_records(faces_dir)
    source_pixels, places = load_sources(Path(params.paths.raw) / "manifest.jsonl", {r.get("image_id") for r in records})
    cache_path = out / "hashes.jsonl"
    report = progress or (lambda done, total: None)
    # the bar counts faces, then their source images (at most one per face)
    total = len(records) * (2 if dp.image_max_distance > 0 else 1)

    workers = resolve_workers(dp.workers)
    image_edges, image_hashes, images, image_reused = np.empty((0, 2), dtype=np.int64), {}, {}, 0
    with hashing_pool(workers, total) as pool:
        shards = str(faces_dir / "shards")
        paths = [Source(shards, Member.of(r), r["face_id"], str(r.get("file_sha256") or "")) for r in records]
        results, reused = hash_cached("face_id", [r["face_id"] for r in records], paths, cache_path, pool, lambda done: report(done, total))
        del paths
        hashed = [(r, h) for r, h in zip(records, results) if isinstance(h, FaceHash)]
        for r, h in zip(records, results):
            if isinstance(h, HashFailure):
                log.warning("face %s skipped: %s", r["face_id"], h)
                rejects.append({"face_id": r["face_id"], "reason": h.reason, "detail": h.detail})
        if dp.image_max_distance > 0:
            image_edges, image_hashes, images, image_reused = source_image_edges(params, hashed, places, pool, lambda done: report(len(records) + done, total))
        else:
            # the check is off this run: keep the source images' cached hashes for when it is on again
            current = {r.get("image_id") for r, _ in hashed}
            image_hashes = {i: h for i, h in load_hash_cache(cache_path, "image_id").items() if i in current}
    report(total, total)

    phashes = np.array([h.phash for _, h in hashed], dtype=np.uint64)
    face_labels = group_faces(phashes, [h.pixel_sha256 for _, h in hashed], dp.max_distance, workers)
    n = len(hashed)
    labels = components(n, [np.stack([np.arange(n), face_labels], axis=1), image_edges]) if len(image_edges) else face_labels

    ranked = sorted(range(n), key=lambda i: representative_rank(hashed[i][0], source_pixels))
    kept_of: dict[int, int] = {}
    for i in ranked:
        kept_of.setdefault(int(labels[i]), i)

    rows, removed = [], Counter()
    for i, (record, h) in enumerate(hashed):
        k = kept_of[int(labels[i])]
        kept_hash = hashed[k][1]
        if i == k:
            kind = None
        elif h.pixel_sha256 == kept_hash.pixel_sha256:
            kind = "exact"
        else:
            kind = "near" if face_labels[i] == face_labels[k] else "near_image"
        if kind:
            removed[kind] += 1
        rows.append(
            {
                "face_id": record["face_id"],
                "image_id": record.get("image_id"),
                "phash": to_hex(h.phash),
                "group_id": hashed[k][0]["face_id"],
                "kept": i == k,
                "dup_kind": kind,
                "distance": int(popcount64(np.uint64(h.phash ^ kept_hash.phash))),
            }
        )

    sizes = Counter(int(x) for x in labels)
    summary = DedupeSummary(
        faces=len(records) + sum(1 for r in rejects if r["reason"] == "bad_face_id"),
        kept=len(kept_of),
        removed_by_kind={k: removed[k] for k in DUP_KINDS},
        duplicate_groups=sum(1 for s in sizes.values() if s > 1),
        largest_group=max(sizes.values(), default=0),
        skipped=dict(sorted(Counter(r["reason"] for r in rejects).items())),
        max_distance=dp.max_distance,
        image_max_distance=dp.image_max_distance,
        box_iou=dp.box_iou,
        images=images,
        hashes_reused=reused + image_reused,
        output=str(out),
    )
    if summary.largest_group > max(5, 0.1 * n):
        log.warning(
            "%d of %d faces fell into one duplicate group: these faces look alike to the perceptual hash "
            "(see group %s in %s/manifest.jsonl); if they are different pictures, lower dedupe.max_distance "
            "(or dedupe.image_max_distance when their dup_kind is near_image)",
            summary.largest_group, n, rows[int(np.argmax(np.bincount(labels)))]["group_id"], out,
        )
    write_jsonl(out / "manifest.jsonl", rows)
    write_jsonl(out / "rejects.jsonl", rejects)
    # drop hashes of faces and images gone
    write_jsonl(cache_path, itertools.chain((_cache_record("face_id", r["face_id"], h) for r, h in hashed), (_cache_record("image_id", i, h) for i, h in image_hashes.items())))
    write_json(out / "dedupe.json", summary.metrics())
    log.info("dedupe: %d faces, %d kept, %d removed %s", summary.faces, summary.kept, summary.removed, summary.removed_by_kind)
    return summary
