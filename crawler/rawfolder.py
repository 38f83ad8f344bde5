"""The crawl's output folder (docs/architecture.md): image shards, manifest, rejects, summary.

    shards/raw-<NNNNNN>.tar              each distinct file once, as member <sha256>.<ext> of a tar
                                         shard (WebDataset layout, anigan.shards); shards merged
                                         from parts are named raw-<part-id>-<NNNNNN>.tar
    manifest.jsonl                       one line per kept post, with the shard, offset and bytes of
                                         its image; posts with the same bytes share an image_id
    rejects.jsonl                        one line per refused post: reason and detail
    crawl.json                           the summary: counts (DVC metrics)
    crawl_state.json                     what was crawled (source, site, tags) with which filters
    listing.json                         where the listing walk reached, to resume from (crawler.walk)
    ground_truth.jsonl                   the demo booru's truth about its posts (source demo only)
    parts/<part-id>/                     what each of several crawl processes writes (crawler.parts)

An image is appended to the open shard and fsynced before its manifest line is appended whole
and fsynced, so a killed crawl leaves at most a torn member after the last one a line names,
which `prepare` cuts off. `prepare` also merges finished parts and brings the folder in line
with the current params before a run: that is what makes resuming and `dvc repro` safe.
Every pass over the manifest streams it (crawler.reconcile); nothing holds it as records.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path
from typing import BinaryIO

import numpy as np

from anigan.errors import UserError
from anigan.files import append_jsonl, atomic_writer, jsonl_bytes, read_json, read_jsonl, read_jsonl_at, read_jsonl_offsets, write_json
from anigan.ids import sha256_hex
from anigan.shards import Member, ShardWriter, Usage, compact, cut_tail, remove_unused
from crawler.filters import Filters
from crawler.items import TRANSIENT_REASONS
from anigan.keys import CHUNK, IMAGE, POST, Column, KeySet, RowFile, count_distinct, image_digest, post_digest, sorted_file
from crawler.parts import MANIFEST, PARTS, PREFIX, REJECTS, SHARDS, STATE, Part, finished_parts, live_parts, part_folders, shard_files, shard_prefixes
from crawler.reconcile import ManifestVerdict, judge_manifest, judge_rejects, post_key

log = logging.getLogger(__name__)

__all__ = ["Filters", "Ledger", "RawFolder", "Reconciled", "post_key"]

DEFAULT_SHARD_SIZE = 2000
SUMMARY = "crawl.json"
GROUND_TRUTH = "ground_truth.jsonl"
WALK = "listing.json"


@dataclass
class Reconciled:
    """What an existing folder holds after prepare, and what was dropped from it and why."""

    images: int
    posts: int
    dropped: dict[str, int] = field(default_factory=dict)
    started_over: bool = False
    merged: int = 0  # parts merged in


@dataclass(frozen=True)
class Counts:
    """What a raw folder holds: distinct images, posts, refusals by reason."""

    images: int
    posts: int
    rejected: dict[str, int]


class RawFolder:
    """Reads and writes one crawl output folder (or one part of one); `close()` ends the open shard."""

    def __init__(self, root: str | Path, shard_size: int = DEFAULT_SHARD_SIZE) -> None:
        self.root = Path(root)
        self.shards = self.root / SHARDS
        self.manifest = self.root / MANIFEST
        self.rejects = self.root / REJECTS
        self.summary = self.root / SUMMARY
        self.state = self.root / STATE
        self.ground_truth = self.root / GROUND_TRUTH
        self.walk = self.root / WALK
        self.shard_size = shard_size
        self._writer: ShardWriter | None = None
        self._stored: Places | None = None
        # The pipeline writes from several threads: a member and its manifest line go in together,
        # so the manifest lists members in shard order and a kill leaves unnamed ones only at the end.
        self._lock = threading.Lock()

    def stored(self) -> Places:
        """Where the bytes of every image the manifest names are."""
        if self._stored is None:
            self._stored = Places(read_jsonl(self.manifest, missing_ok=True), self.root)
        return self._stored

    def store(self, body: bytes, ext: str, image_id: str | None = None) -> tuple[str, Member, bool]:
        """Append `body` to the open shard unless an image with its bytes is stored; returns
        (image ID, where it is, newly written). Durable on return."""
        image_id = image_id or sha256_hex(body)
        stored = self.stored()
        if (member := stored.get(image_id)) is not None:
            return image_id, member, False
        if self._writer is None:
            self._writer = ShardWriter(self.shards, PREFIX, self.shard_size)
        member = self._writer.add(f"{image_id}.{ext}", body)
        self._writer.flush()
        stored.add(image_id, member)
        return image_id, member, True

    def keep(self, body: bytes, ext: str, record: dict) -> bool:
        """Store a post's image, then append its manifest line naming where it is; True when the image is new."""
        with self._lock:
            _, member, new = self.store(body, ext, record["image_id"])
            record.update(member.fields())
            self.append_manifest(record)
        return new

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def append_manifest(self, record: dict) -> None:
        append_jsonl(self.manifest, [record])

    def append_reject(self, record: dict) -> None:
        append_jsonl(self.rejects, [record])

    def read_manifest(self) -> list[dict]:
        """Every manifest line as a dict: for tests and small folders; the crawl itself streams."""
        return list(read_jsonl(self.manifest, missing_ok=True))

    def read_rejects(self) -> list[dict]:
        return list(read_jsonl(self.rejects, missing_ok=True))

    def counts(self) -> Counts:
        """Distinct images and posts in the manifest, refusals by reason: one streaming pass each."""
        lines = RowFile([("image", IMAGE), ("post", POST)], self.root)
        try:
            for record in read_jsonl(self.manifest, missing_ok=True):
                lines.append((image_digest(str(record.get("image_id", ""))), post_digest(post_key(record))))
            images, posts = count_distinct(lines, "image"), count_distinct(lines, "post")
        finally:
            lines.close()
        rejected = Counter(r.get("reason", "?") for r in read_jsonl(self.rejects, missing_ok=True))
        return Counts(images, posts, dict(sorted(rejected.items())))

    def read_state(self) -> dict:
        """The query and filters of the crawl that filled the folder ({} when unknown)."""
        try:
            state = read_json(self.state)
        except (FileNotFoundError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def shard_lengths(self) -> dict[str, int]:
        """Shard file name -> its length in bytes, for the shards of every prefix."""
        return {path.name: path.stat().st_size for path in shard_files(self.shards)}

    def clear(self) -> None:
        """Remove everything a crawl wrote here (and nothing else)."""
        self.close()
        shutil.rmtree(self.shards, ignore_errors=True)
        shutil.rmtree(self.root / PARTS, ignore_errors=True)
        shutil.rmtree(self.root / "images", ignore_errors=True)  # the layout before shards
        for path in (self.manifest, self.rejects, self.summary, self.state, self.ground_truth, self.walk):
            path.unlink(missing_ok=True)
        self._stored = None

    def prepare(self, query: dict, filters: Filters, limit: int) -> Reconciled:
        """Make the folder consistent with this run's query and filters before crawling into it
        (and, with several processes, after each): the caller holds the folder's lock.

        A different query (source, site or tags) starts over: the folder holds one crawl. The same
        query resumes: finished parts are merged in (crawler.parts) and every line is judged by
        crawler.reconcile. Torn lines and shard members no line names (a killed run's last image,
        images the params no longer keep, a second copy of an image from another part) are
        removed, so what is left is exactly what the manifest says.
        """
        previous = self.read_state()
        started_over = False
        if previous.get("query") not in (None, query):
            if live := live_parts(self.root):
                raise UserError(f"{self.root}: crawl processes write into it with another query ({live[0].root}); wait for them or use another folder")
            log.warning("crawl: the query changed (%s -> %s); starting over in %s", previous.get("query"), query, self.root)
            self.clear()
            started_over = True
        parts = finished_parts(self.root)
        for part in parts:
            if part.query() not in (None, query):
                raise UserError(f"{part.root}: a part crawled with another query ({part.query()}); move it out of {self.root / PARTS}")
            if part_folders(part.root):  # removing the part would lose them
                raise UserError(f"{part.root}: holds parts of its own; run `anigan crawl --out {part.root}` there first to merge them")
            part.move_shards(self.shards)
        filters_changed = previous.get("filters") not in (None, filters.as_dict())
        verdict = judge_manifest(self._lines(MANIFEST, parts), filters, limit, self.shard_lengths(), self.root)
        try:
            emit = judge_rejects(self._lines(REJECTS, parts), verdict, filters_changed, self.root)
            reconciled = self._reconcile(verdict, emit, parts)
        finally:
            verdict.close()
        write_json(self.state, {"query": query, "filters": filters.as_dict()})
        self._stored = None
        return replace(reconciled, started_over=started_over)

    def _reconcile(self, verdict: ManifestVerdict, emit: np.ndarray, parts: list[Part]) -> Reconciled:
        """Shards, manifest and rejects brought in line with the verdicts; parts merged and removed."""

        usage = _usage(verdict.members())
        prefixes = shard_prefixes(self.shards)
        for prefix in prefixes:
            cut_tail(self.shards, prefix, usage)
        moved: dict[Member, Member] = {}
        for prefix in prefixes:
            moved |= compact(self.shards, prefix, usage, verdict.members(), self.shard_size)
        if moved:
            usage = _usage(moved.get(m, m) for m in verdict.members())
        if self.manifest.exists() or verdict.posts:
            self._write_manifest(verdict, parts, moved)
        if self.rejects.exists() or (emit >= 0).any():
            self._write_rejects(emit, parts)
        for part in parts:  # after the lines naming its shards are on disk
            part.remove()
        if parts and not part_folders(self.root):
            (self.root / PARTS).rmdir()
        for prefix in shard_prefixes(self.shards):
            remove_unused(self.shards, prefix, usage)  # after the manifest naming their replacements
        if parts:
            log.info("crawl: merged %d parts into %s", len(parts), self.root)
        if verdict.dropped:
            log.info("crawl: reconciled %s with the current params: dropped %s", self.root, verdict.dropped)
        return Reconciled(verdict.images, verdict.posts, verdict.dropped, False, len(parts))

    def _sources(self, name: str, parts: list[Part]) -> list[tuple[Path, Part | None]]:
        return [(self.root / name, None)] + [(part.root / name, part) for part in parts]

    def _lines(self, name: str, parts: list[Part]):
        """The lines of the folder's file `name` and then of each part's, places as merged."""
        return chain.from_iterable(read_jsonl(path, missing_ok=True) if part is None else part.records(path) for path, part in self._sources(name, parts))

    def _write_manifest(self, verdict: ManifestVerdict, parts: list[Part], moved: dict[Member, Member]) -> None:
        with atomic_writer(self.manifest) as out:
            for record, member in zip(self._lines(MANIFEST, parts), verdict.places(), strict=True):
                if member is not None:
                    record.update(moved.get(member, member).fields())
                    out.write(jsonl_bytes(record))

    def _write_rejects(self, emit: np.ndarray, parts: list[Part]) -> None:
        """Each kept refusal at its post's first line; a later line of the post is read by its offset."""
        paths = [path for path, _ in self._sources(REJECTS, parts)]
        files, offsets = Column(np.int32), Column(np.int64)  # each line's file (index into paths) and byte offset
        for index, path in enumerate(paths):
            for offset, _ in read_jsonl_offsets(path, missing_ok=True):
                files.append(index)
                offsets.append(offset)
        file_of, offset_of = files.array(), offsets.array()
        handles: dict[int, BinaryIO] = {}
        try:
            with atomic_writer(self.rejects) as out:
                for line in np.flatnonzero(emit >= 0):
                    source = int(emit[line])
                    index = int(file_of[source])
                    if index not in handles:
                        handles[index] = open(paths[index], "rb")  # noqa: SIM115 (closed below)
                    out.write(jsonl_bytes(read_jsonl_at(handles[index], int(offset_of[source]))))
        finally:
            for f in handles.values():
                f.close()


class Places:
    """Image ID -> where its bytes are (the first line naming it wins): a sorted file of digests
    and places (anigan.keys.SortedFile) for what the manifest named, a dict for what this run
    stores, folded into the file now and then."""

    ROW = np.dtype([("key", IMAGE), ("shard", np.int32), ("offset", np.int64), ("size", np.int64)])

    def __init__(self, records, folder: str | Path | None = None) -> None:
        names: dict[str, int] = {}
        lines = RowFile([("image", IMAGE), ("shard", np.int32), ("offset", np.int64), ("size", np.int64)], folder)
        try:
            for record in records:
                if (member := Member.of(record)) is not None:
                    lines.append((image_digest(str(record.get("image_id", ""))), names.setdefault(member.shard, len(names)), member.offset, member.bytes))
            self._sorted = sorted_file(lines, self.ROW, "image", folder)
        finally:
            lines.close()
        self._names = list(names)
        self._index = names
        self._added: dict[str, Member] = {}

    def get(self, image_id: str) -> Member | None:
        if (member := self._added.get(image_id)) is not None:
            return member
        row = self._sorted.get(image_digest(image_id))
        return None if row is None else Member(self._names[int(row["shard"])], int(row["offset"]), int(row["size"]))

    def add(self, image_id: str, member: Member) -> None:
        self._added[image_id] = member
        if len(self._added) >= CHUNK:
            rows = [(image_digest(i), self._index.setdefault(m.shard, len(self._index)), m.offset, m.bytes) for i, m in self._added.items()]
            self._names = list(self._index)
            self._sorted.merge(np.array(rows, self.ROW))
            self._added.clear()

    def __len__(self) -> int:
        return len(self._sorted) + len(self._added)


def _usage(members) -> Usage:
    usage = Usage()
    for member in members:
        usage.add(member)
    return usage


class Ledger:
    """What a crawler process knows of its folder: posts already decided and images kept.

    Read once when the crawl opens (after `RawFolder.prepare`) and updated as records are written,
    so a post in the manifest or rejects is never fetched again and `limit` counts the total.
    Posts and images are digests in sorted temporary files (anigan.keys): a few bytes of memory each.
    """

    def __init__(self, folder: RawFolder, limit: int) -> None:
        self.limit = limit
        manifest = chain(read_jsonl(folder.manifest, missing_ok=True), read_jsonl(folder.rejects, missing_ok=True))
        self.decided = KeySet.of(POST, (post_digest(post_key(record)) for record in manifest), folder.root)
        self.images = KeySet.of(IMAGE, (image_digest(str(r.get("image_id", ""))) for r in read_jsonl(folder.manifest, missing_ok=True)), folder.root)
        self.retry_later: set[str] = set()  # refused for now (transient): a later run tries again

    def known(self, key: str) -> bool:
        return post_digest(key) in self.decided

    @property
    def image_count(self) -> int:
        return len(self.images)

    @property
    def full(self) -> bool:
        return len(self.images) >= self.limit

    def admits(self, image_id: str) -> bool:
        """Whether a file may be kept: below the limit, or the same bytes as an image already kept."""
        return image_digest(image_id) in self.images or not self.full

    def kept(self, record: dict) -> bool:
        """Note a manifest record; True when its image is new."""
        self.decided.add(post_digest(post_key(record)))
        return self.images.add(image_digest(record["image_id"]))

    def rejected(self, record: dict) -> None:
        self.decided.add(post_digest(post_key(record)))
        if record.get("reason") in TRANSIENT_REASONS:
            self.retry_later.add(post_key(record))

    def settled(self, key: str) -> bool:
        """Whether a post's outcome is recorded for good (kept, or refused for a lasting reason)."""
        return self.known(key) and key not in self.retry_later
