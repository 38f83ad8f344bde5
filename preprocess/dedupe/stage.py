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
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anigan.files import write_json, write_jsonl
from anigan.params import Params
from anigan.workers import resolve_workers
from preprocess.columns import decode, distinct, gather, lookup_column, take_rows
from preprocess.dedupe.face_table import SAFE_ID, FaceTable, read_face_table
from preprocess.dedupe.hamming_index import iter_distinct_pairs, near_pairs, popcount64
from preprocess.dedupe.hashing import Hashes, hash_cached, hashing_pool, read_cache
from preprocess.dedupe.image_pairs import FacesByImage, ImageSizes, faces_of_image_pairs
from preprocess.dedupe.phash import Source, to_hex
from preprocess.dedupe.sources import SourceTable, read_sources
from preprocess.groups import components, label_edges, run_edges, same_key_edges
from preprocess.spill import Spill, blocks, fixed_mmap_threshold, gather_blocks, read_rows, release

log = logging.getLogger(__name__)

# dup_kind of a face that is not kept: same pixels as the kept face, pHash within max_distance of a
# group member, or joined only through a near-duplicate source image
DUP_KINDS = ("exact", "near", "near_image")
# rows of a column looked up in a spilled sorted column between releases: each lookup touches
# pages of it, so this bounds the pages held whatever the number of items
LOOKUP_ROWS = 256
RANK_ROWS = 1 << 16  # grouped faces ranked at a time (whole groups)


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


def group_faces(phashes: np.ndarray, pixel_shas: np.ndarray, max_distance: int, workers: int = 1) -> np.ndarray:
    """Each face's group (the index of its smallest member): exact pixel copies and pHashes within max_distance."""
    n = len(phashes)

    def edges() -> Iterator[np.ndarray]:
        yield same_key_edges(pixel_shas)
        release(pixel_shas)
        # one representative face per distinct hash, its first, carries that hash's near pairs
        order = np.argsort(phashes, kind="stable")
        ordered = phashes[order]
        release(phashes)
        same = np.zeros(n, dtype=bool)
        np.equal(ordered[1:], ordered[:-1], out=same[1:])
        yield run_edges(order, same)  # faces sharing a hash
        unique_hashes, first_of = ordered[~same], order[~same].astype(np.int32 if n < 2**31 else np.int64)
        del order, ordered, same
        for pairs in iter_distinct_pairs(unique_hashes, max_distance, workers=workers):
            yield first_of[pairs]

    return components(n, edges())


def grouped(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The faces in groups of two or more, ordered by group (each group's faces in face order), and where each group starts among them.

    Most faces are alone in their group, so only these are ranked: a bool per face and an index
    per grouped face, never an n-long sort.
    """
    n = len(labels)
    index = np.int32 if n < 2**31 else np.int64
    joined = np.empty(n, dtype=bool)
    for rows in blocks(n):
        joined[rows] = labels[rows] != np.arange(rows.start, rows.stop, dtype=labels.dtype)
    joined[labels[joined]] = True  # a group's label is its smallest member
    members = np.flatnonzero(joined).astype(index)
    del joined
    members = members[np.argsort(labels[members], kind="stable")]
    group_of = labels[members]
    starts = np.flatnonzero(np.r_[True, group_of[1:] != group_of[:-1]]) if len(members) else np.zeros(0, dtype=np.int64)
    return members, starts


def representatives(labels: np.ndarray, source_pixels: np.ndarray, box_area: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The face each face's group keeps: the largest source image, then box, then score, then the first in face-ID order.

    Grouped faces are ranked a block of whole groups at a time (see `grouped`).
    """
    n = len(labels)
    kept_of = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    members, starts = grouped(labels)
    ends = np.append(starts[1:], len(members))
    lo = 0
    while lo < len(starts):
        hi = max(int(np.searchsorted(starts, starts[lo] + RANK_ROWS, side="right")), lo + 1)  # whole groups, at least one
        rows = members[starts[lo] : ends[hi - 1]]
        group = labels[rows]
        # the last key sorts first; rows are in face order within a group, so ties keep the first
        ranked = np.lexsort((-read_rows(score, rows), -read_rows(box_area, rows), -read_rows(source_pixels, rows), group))
        release(score, box_area)
        head = np.r_[True, group[ranked][1:] != group[ranked][:-1]]
        winners = rows[ranked[head]]
        kept_of[rows] = np.repeat(winners, np.diff(np.append(starts[lo:hi], ends[hi - 1])))
        lo = hi
    return kept_of


def hash_faces(
    faces: FaceTable, cache_path: Path, shards: Path, pool: Executor | None, progress: Callable[[int], None], spill: Spill | None = None
) -> tuple[Hashes, list[dict], int]:
    """Hashes of every face's crop (cached ones reused), rejects for crops that cannot be hashed, and how many were reused."""
    hashes, failures, reused = hash_cached(
        "face_id", faces.face_id, faces.content_id, lambda i: Source(str(shards), faces.member(i), decode(faces.face_id[i]), decode(faces.content_id[i])),
        cache_path, pool, progress, spill=spill,
    )
    rejects = []
    for i, failure in sorted(failures, key=lambda f: f[0]):
        fid = decode(faces.face_id[i])
        log.warning("face %s skipped: %s", fid, failure)
        rejects.append({"face_id": fid, "reason": failure.reason, "detail": failure.detail})
    return hashes, rejects, reused


def source_image_edges(
    params: Params, faces: FaceTable, sources: SourceTable, pool: Executor | None, progress: Callable[[int], None], spill: Spill | None = None
) -> tuple[np.ndarray, np.ndarray, Hashes, dict[str, Any], int]:
    """Face pairs joined through near-duplicate source images; also the hashed images' IDs and hashes, a summary and how many hashes were reused.

    Hashes the source image of every face (its raw shard member, at most faces.max_pixels),
    finds image pairs within dedupe.image_max_distance and pairs their faces by box position.
    """
    # the faces' images as rows of the sources table (its IDs sorted and distinct, every face's image among them)
    used = np.zeros(len(sources.image_id), dtype=bool)
    at = lookup_column(sources.image_id, faces.image_id, faces.has_image, LOOKUP_ROWS)
    used[at[at >= 0]] = True
    del at
    place = np.flatnonzero(used).astype(np.int32 if len(used) < 2**31 else np.int64)
    del used
    shards = Path(params.paths.raw) / "shards"  # the crawl's (docs/architecture.md)
    on_disk = np.array([(shards / name).is_file() for name in sources.shards] + [False])  # shard code -1 reads the last
    safe, found = np.empty(len(place), dtype=bool), np.empty(len(place), dtype=bool)
    for rows in blocks(len(place)):
        safe[rows] = [bool(SAFE_ID.match(decode(i))) for i in sources.image_id[place[rows]]]
        found[rows] = on_disk[sources.shard[place[rows]]]
        release(sources.image_id, sources.shard)
    place = place[safe & found]
    images = int(safe.sum())
    del safe, found
    names = take_rows(sources.image_id, place, spill)
    release(sources.image_id)
    skipped = Counter({"missing_file": images - len(names)} if len(names) < images else {})
    hashes, failures, reused = hash_cached(
        "image_id", names, names, lambda k: Source(str(shards), sources.member(int(place[k])), decode(names[k]), decode(names[k])),
        Path(params.paths.dedup) / "hashes.jsonl", pool, progress, params.faces.max_pixels, spill,
    )
    skipped.update(f.reason for _, f in failures)
    if skipped:
        log.warning(
            "%d of %d source images could not be hashed (%s); their faces are grouped by their own hashes only",
            sum(skipped.values()), images, ", ".join(f"{v} {k}" for k, v in sorted(skipped.items())),
        )
    hashed = np.nonzero(hashes.ok)[0]
    names = take_rows(names, hashed, spill)
    hashes.keep(hashed, spill)
    del hashed
    pairs = near_pairs(hashes.phash, params.dedupe.image_max_distance)
    if spill:
        hashes.phash = spill.save(hashes.phash)  # for the cache, written at the end
    image_of = lookup_column(names, faces.image_id, faces.has_image, LOOKUP_ROWS)
    edges = faces_of_image_pairs(pairs, FacesByImage(image_of, faces.box, faces.box_ok, len(names)), ImageSizes(hashes.width, hashes.height), params.dedupe.box_iou)
    hashes.release()
    release(faces.box, faces.box_ok)
    summary = {"hashed": len(names), "near_pairs": len(pairs), "faces_joined": len(edges), "skipped": dict(sorted(skipped.items()))}
    return edges, names, hashes, summary, reused


def cached_image_hashes(cache_path: Path, faces: FaceTable) -> tuple[np.ndarray, Hashes]:
    """The cached hashes of the faces' source images, in the order the cache first lists them: kept for when the image check is on again."""
    names = distinct(faces.image_id, faces.has_image)
    hashes, first_line = read_cache(cache_path, "image_id", names)
    listed = np.nonzero(hashes.ok)[0]
    listed = listed[np.argsort(first_line[listed], kind="stable")]
    hashes.keep(listed)
    return names[listed], hashes


def rows_of_kept(column: np.ndarray, rows: slice, kept: np.ndarray) -> np.ndarray:
    """column[kept] for the block `rows` whose kept faces are `kept`: most faces keep themselves, so the block is read
    in order and only the others' rows are read from the column's file (spill.read_rows), never at random through its map."""
    out = np.array(column[rows])
    other = np.flatnonzero(kept != np.arange(rows.start, rows.stop))
    if len(other):
        out[other] = read_rows(column, kept[other])
    return out


def dup_kinds(hashes: Hashes, kept_of: np.ndarray, face_labels: np.ndarray) -> np.ndarray:
    """Each face's dup_kind as a code: 0 for a kept face, else 1 + its index in DUP_KINDS."""
    kinds = np.empty(len(kept_of), dtype=np.int8)
    for rows in gather_blocks(len(kept_of)):  # spilled digests: a block at a time, some read at random
        kept = kept_of[rows]
        exact = hashes.pixel_sha256[rows] == rows_of_kept(hashes.pixel_sha256, rows, kept)
        release(hashes.pixel_sha256)
        near = face_labels[rows] == face_labels[kept]
        block = np.where(exact, 1, np.where(near, 2, 3)).astype(np.int8)
        block[kept == np.arange(rows.start, rows.stop)] = 0
        kinds[rows] = block
    return kinds


def manifest_rows(faces: FaceTable, hashes: Hashes, kept_of: np.ndarray, kinds: np.ndarray) -> Iterator[dict]:
    """The dedup manifest's records, one per hashed face in face-ID order (spilled columns read a block at a time)."""
    for rows in gather_blocks(len(kept_of)):
        phash = np.asarray(hashes.phash[rows])
        distance = popcount64(phash ^ rows_of_kept(hashes.phash, rows, kept_of[rows]))
        face_ids, image_ids, has_image = faces.face_id[rows], faces.image_id[rows], faces.has_image[rows]
        group_ids = rows_of_kept(faces.face_id, rows, kept_of[rows])
        for k, i in enumerate(range(rows.start, rows.stop)):
            yield {
                "face_id": decode(face_ids[k]),
                "image_id": decode(image_ids[k]) if has_image[k] else None,
                "phash": to_hex(phash[k]),
                "group_id": decode(group_ids[k]),
                "kept": not kinds[i],
                "dup_kind": DUP_KINDS[kinds[i] - 1] if kinds[i] else None,
                "distance": int(distance[k]),
            }
        release(faces.face_id, faces.image_id, faces.has_image, hashes.phash)


def cache_lines(key: str, names: np.ndarray, hashes: Hashes) -> Iterator[dict]:
    """The hash cache's lines for `names` (face or image IDs, spilled or not) and their hashes, in order."""
    for rows in blocks(len(names)):
        for i in range(rows.start, rows.stop):
            yield hashes.cache_record(key, decode(names[i]), i)
        release(names)
        hashes.release()


def run_dedupe(params: Params, progress: Callable[[int, int], None] | None = None) -> DedupeSummary:
    """Hash, group and choose representatives for every face; write the dedup folder. `progress(done, total)` per batch."""
    faces_dir, out = Path(params.paths.faces), Path(params.paths.dedup)
    fixed_mmap_threshold()
    with Spill(out) as spill:
        dp = params.dedupe
        table, rejects = read_face_table(faces_dir, spill)
        bad_ids = len(rejects)
        # the distinct source IDs (64 bytes each) go to a file at once: the raw manifest is read against them
        sources = read_sources(Path(params.paths.raw) / "manifest.jsonl", spill.save(distinct(table.image_id, table.has_image)))
        sources.spill(spill)
        cache_path = out / "hashes.jsonl"
        report = progress or (lambda done, total: None)
        # the bar counts faces, then their source images (at most one per face)
        total = len(table) * (2 if dp.image_max_distance > 0 else 1)

        workers = resolve_workers(dp.workers)
        image_edges, images = np.empty((0, 2), dtype=np.int64), {}
        with hashing_pool(workers, total) as pool:
            hashes, failed, reused = hash_faces(table, cache_path, faces_dir / "shards", pool, lambda done: report(done, total), spill)
            rejects += failed
            hashed = np.nonzero(hashes.ok)[0]
            table.keep(hashed, spill)
            hashes.keep(hashed, spill)
            faces = table
            del table, hashed
            hashes.phash = spill.save(hashes.phash)  # the searches work on the distinct hashes; this is for the output
            if dp.image_max_distance > 0:
                image_edges, image_names, image_hashes, images, image_reused = source_image_edges(
                    params, faces, sources, pool, lambda done: report(total // 2 + done, total), spill
                )
                reused += image_reused
            else:
                # the check is off this run: keep the source images' cached hashes for when it is on again
                image_names, image_hashes = cached_image_hashes(cache_path, faces)
        report(total, total)

        face_labels = group_faces(hashes.phash, hashes.pixel_sha256, dp.max_distance, workers)
        n = len(faces)
        labels = components(n, [label_edges(face_labels), image_edges]) if len(image_edges) else face_labels
        source_pixels = gather(sources.pixels, lookup_column(sources.image_id, faces.image_id, faces.has_image, LOOKUP_ROWS), 0)
        release(sources.pixels)
        del sources
        kept_of = representatives(labels, source_pixels, faces.box_area, faces.score)
        release(faces.box_area, faces.score)
        del source_pixels
        kinds = dup_kinds(hashes, kept_of, face_labels)
        del face_labels

        by_kind = np.bincount(kinds, minlength=len(DUP_KINDS) + 1)
        sizes = np.bincount(labels, minlength=1)
        summary = DedupeSummary(
            faces=n + bad_ids,
            kept=int(by_kind[0]),
            removed_by_kind={k: int(by_kind[1 + j]) for j, k in enumerate(DUP_KINDS)},
            duplicate_groups=int((sizes > 1).sum()),
            largest_group=int(sizes.max(initial=0)),
            skipped=dict(sorted(Counter(r["reason"] for r in rejects).items())),
            max_distance=dp.max_distance,
            image_max_distance=dp.image_max_distance,
            box_iou=dp.box_iou,
            images=images,
            hashes_reused=reused,
            output=str(out),
        )
        largest = int(np.argmax(sizes))
        del sizes, labels  # a group size and a label per face: not needed for writing
        if summary.largest_group > max(5, 0.1 * n):
            log.warning(
                "%d of %d faces fell into one duplicate group: these faces look alike to the perceptual hash "
                "(see group %s in %s/manifest.jsonl); if they are different pictures, lower dedupe.max_distance "
                "(or dedupe.image_max_distance when their dup_kind is near_image)",
                summary.largest_group, n, decode(faces.face_id[kept_of[largest]]), out,
            )
        write_jsonl(out / "manifest.jsonl", manifest_rows(faces, hashes, kept_of, kinds))
        write_jsonl(out / "rejects.jsonl", rejects)
        # drop hashes of faces and images gone
        write_jsonl(
            cache_path,
            itertools.chain(cache_lines("face_id", faces.face_id, hashes), cache_lines("image_id", image_names, image_hashes)),
        )
    write_json(out / "dedupe.json", summary.metrics())
    log.info("dedupe: %d faces, %d kept, %d removed %s", summary.faces, summary.kept, summary.removed, summary.removed_by_kind)
    return summary
