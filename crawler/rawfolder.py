"""The crawl's output folder (docs/architecture.md): image shards, manifest, rejects, summary.

    shards/raw-<NNNNNN>.tar              each distinct file once, as member <sha256>.<ext> of a tar
                                         shard (WebDataset layout, anigan.shards)
    manifest.jsonl                       one line per kept post, with the shard, offset and bytes of
                                         its image; posts with the same bytes share an image_id
    rejects.jsonl                        one line per refused post: reason and detail
    crawl.json                           the summary: counts (DVC metrics)
    crawl_state.json                     what was crawled (source, site, tags) with which filters
    listing.json                         where the listing walk reached, to resume from (crawler.walk)
    ground_truth.jsonl                   the demo booru's truth about its posts (source demo only)

An image is appended to the open shard and fsynced before its manifest line is appended whole
and fsynced, so a killed crawl leaves at most a torn member after the last one a line names,
which `prepare` cuts off. `reconcile` brings an existing folder in line
with the current params before a run: that is what makes resuming and `dvc repro` safe.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from anigan.files import append_jsonl, read_json, read_jsonl, write_json, write_jsonl
from anigan.ids import sha256_hex
from anigan.shards import Member, ShardFolder, ShardWriter, Usage, compact, cut_tail, remove_unused
from crawler.items import FILTER_REASONS, TRANSIENT_REASONS

log = logging.getLogger(__name__)

SHARDS = "shards"
PREFIX = "raw"
DEFAULT_SHARD_SIZE = 2000
MANIFEST = "manifest.jsonl"
REJECTS = "rejects.jsonl"
SUMMARY = "crawl.json"
STATE = "crawl_state.json"
GROUND_TRUTH = "ground_truth.jsonl"
WALK = "listing.json"


def post_key(record: dict) -> str:
    """The post a manifest or rejects line is about, as Post.key spells it."""
    return f"{record.get('source')}:{record.get('post_id')}"


@dataclass(frozen=True)
class Filters:
    """The params that decide whether a file is kept; a change re-examines earlier decisions."""

    ratings: tuple[str, ...]
    min_width: int
    min_height: int
    max_pixels: int
    max_bytes: int
    # A folder's images without metadata have no rating; the user chose them, so they pass.
    keep_unrated: bool = False

    def as_dict(self) -> dict:
        return {
            "ratings": sorted(self.ratings),
            "min_width": self.min_width,
            "min_height": self.min_height,
            "max_pixels": self.max_pixels,
            "max_bytes": self.max_bytes,
        } | ({"keep_unrated": True} if self.keep_unrated else {})

    def rating_ok(self, rating: str | None) -> bool:
        """A post passes when its rating is wanted; one without a known rating only when all are
        (or, for a folder, always)."""
        if rating is None:
            return self.keep_unrated or len(set(self.ratings)) >= 4
        return rating in self.ratings

    def why_not_kept(self, record: dict, size: int | None) -> str | None:
        """Why a manifest record fails these filters (a reason word), or None when it passes."""
        if not self.rating_ok(record.get("rating")):
            return "rating"
        width, height = int(record.get("width") or 0), int(record.get("height") or 0)
        if width < self.min_width or height < self.min_height:
            return "too_small"
        if width * height > self.max_pixels:
            return "too_many_pixels"
        if size is not None and size > self.max_bytes:
            return "too_many_bytes"
        return None


@dataclass
class Reconciled:
    """An existing folder's records after reconcile, and what was dropped from it and why."""

    manifest: list[dict]
    rejects: list[dict]
    dropped: dict[str, int] = field(default_factory=dict)
    started_over: bool = False


def reconcile(
    manifest: Iterable[dict],
    rejects: Iterable[dict],
    filters: Filters,
    limit: int,
    sizes: dict[str, int],
    filters_changed: bool,
) -> Reconciled:
    """Keep what still holds under the current params; pure, so it is tested without files.

    Manifest: one line per post (the first), records the filters now refuse are dropped, and only
    the first `limit` distinct images (in file order) stay. Rejects: the last line per post wins;
    posts now kept, transient failures (retried) and filter decisions when the filters changed
    (re-examined) are dropped.
    """
    dropped: dict[str, int] = {}
    kept: list[dict] = []
    seen_posts: set[str] = set()
    images: set[str] = set()
    for record in manifest:
        key = post_key(record)
        if key in seen_posts:
            dropped["duplicate_line"] = dropped.get("duplicate_line", 0) + 1
            continue
        seen_posts.add(key)
        why = filters.why_not_kept(record, sizes.get(record.get("image_id", ""), record.get("bytes")))
        if why is None and record.get("image_id") not in images and len(images) >= limit:
            why = "over_limit"
        if why:
            dropped[why] = dropped.get(why, 0) + 1
            continue
        images.add(record["image_id"])
        kept.append(record)
    kept_posts = {post_key(r) for r in kept}
    last: dict[str, dict] = {}
    for record in rejects:
        last[post_key(record)] = record
    remaining = []
    for key, record in last.items():
        reason = record.get("reason")
        if key in kept_posts or reason in TRANSIENT_REASONS or (filters_changed and reason in FILTER_REASONS):
            continue
        remaining.append(record)
    return Reconciled(kept, remaining, dropped)


class RawFolder:
    """Reads and writes one crawl output folder; `close()` ends the open shard."""

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
        self._stored: dict[str, Member] | None = None
        # The pipeline writes from several threads: a member and its manifest line go in together,
        # so the manifest lists members in shard order and a kill leaves unnamed ones only at the end.
        self._lock = threading.Lock()

    def stored(self) -> dict[str, Member]:
        """Image ID -> where its bytes are, for every image the manifest names."""
        if self._stored is None:
            self._stored = {}
            for record in read_jsonl(self.manifest, missing_ok=True):
                member = Member.of(record)
                if member is not None:
                    self._stored.setdefault(record["image_id"], member)
        return self._stored

    def store(self, body: bytes, ext: str, image_id: str | None = None) -> tuple[str, Member, bool]:
        """Append `body` to the open shard unless an image with its bytes is stored; returns
        (image ID, where it is, newly written). Durable on return."""
        image_id = image_id or sha256_hex(body)
        stored = self.stored()
        if image_id in stored:
            return image_id, stored[image_id], False
        if self._writer is None:
            self._writer = ShardWriter(self.shards, PREFIX, self.shard_size)
        member = self._writer.add(f"{image_id}.{ext}", body)
        self._writer.flush()
        stored[image_id] = member
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
        return list(read_jsonl(self.manifest, missing_ok=True))

    def read_rejects(self) -> list[dict]:
        return list(read_jsonl(self.rejects, missing_ok=True))

    def read_state(self) -> dict:
        """The query and filters of the crawl that filled the folder ({} when unknown)."""
        try:
            state = read_json(self.state)
        except (FileNotFoundError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def shard_lengths(self) -> dict[str, int]:
        """Shard file name -> its length in bytes."""
        shards = ShardFolder(self.shards, PREFIX)
        return {name: shards.path(name).stat().st_size for name in shards.names()}

    def clear(self) -> None:
        """Remove everything a crawl wrote here (and nothing else)."""
        self.close()
        shutil.rmtree(self.shards, ignore_errors=True)
        shutil.rmtree(self.root / "images", ignore_errors=True)  # the layout before shards
        for path in (self.manifest, self.rejects, self.summary, self.state, self.ground_truth, self.walk):
            path.unlink(missing_ok=True)
        self._stored = None

    def prepare(self, query: dict, filters: Filters, limit: int) -> Reconciled:
        """Make the folder consistent with this run's query and filters before crawling into it.

        A different query (source, site or tags) starts over: the folder holds one crawl. The same
        query resumes: see `reconcile`. Torn lines and shard members no record names (a killed
        run's last image, images the params no longer keep) are removed, so what is left is
        exactly what the manifest says.
        """
        previous = self.read_state()
        started_over = False
        if previous.get("query") not in (None, query):
            log.warning("crawl: the query changed (%s -> %s); starting over in %s", previous.get("query"), query, self.root)
            self.clear()
            started_over = True
        filters_changed = previous.get("filters") not in (None, filters.as_dict())
        result = reconcile(read_jsonl(self.manifest, missing_ok=True), self.read_rejects(), filters, limit, {}, filters_changed)
        result.started_over = started_over
        # Records whose bytes are not in a shard cannot be trusted; the next crawl fetches those posts again.
        lengths = self.shard_lengths()
        whole = [r for r in result.manifest if (m := Member.of(r)) is not None and m.offset + m.bytes <= lengths.get(m.shard, -1)]
        if len(whole) < len(result.manifest):
            result.dropped["file_missing"] = len(result.manifest) - len(whole)
            result.manifest = whole
        usage = Usage()
        for record in result.manifest:
            usage.add(Member.of(record))
        cut_tail(self.shards, PREFIX, usage)
        moved = compact(self.shards, PREFIX, usage, (Member.of(r) for r in result.manifest), self.shard_size)
        if moved:
            usage = Usage()
            for record in result.manifest:
                if (new := moved.get(Member.of(record))) is not None:
                    record.update(new.fields())
                usage.add(Member.of(record))
        if self.manifest.exists() or result.manifest:
            write_jsonl(self.manifest, result.manifest)
        if self.rejects.exists() or result.rejects:
            write_jsonl(self.rejects, result.rejects)
        remove_unused(self.shards, PREFIX, usage)  # after the manifest naming their replacements
        if any(result.dropped.values()):
            log.info("crawl: reconciled %s with the current params: dropped %s", self.root, result.dropped)
        write_json(self.state, {"query": query, "filters": filters.as_dict()})
        self._stored = None
        return result


class Ledger:
    """What a crawler process knows of its folder: posts already decided and images kept.

    Read once when the crawl opens (after `RawFolder.prepare`) and updated as records are written,
    so a post in the manifest or rejects is never fetched again and `limit` counts the total.
    """

    def __init__(self, folder: RawFolder, limit: int) -> None:
        manifest, rejects = folder.read_manifest(), folder.read_rejects()
        self.limit = limit
        self.decided: set[str] = {post_key(r) for r in manifest} | {post_key(r) for r in rejects}
        self.images: set[str] = {r["image_id"] for r in manifest}
        self.retry_later: set[str] = set()  # refused for now (transient): a later run tries again

    def known(self, key: str) -> bool:
        return key in self.decided

    @property
    def full(self) -> bool:
        return len(self.images) >= self.limit

    def admits(self, image_id: str) -> bool:
        """Whether a file may be kept: below the limit, or the same bytes as an image already kept."""
        return image_id in self.images or not self.full

    def kept(self, record: dict) -> bool:
        """Note a manifest record; True when its image is new."""
        self.decided.add(post_key(record))
        new = record["image_id"] not in self.images
        self.images.add(record["image_id"])
        return new

    def rejected(self, record: dict) -> None:
        self.decided.add(post_key(record))
        if record.get("reason") in TRANSIENT_REASONS:
            self.retry_later.add(post_key(record))

    def settled(self, key: str) -> bool:
        """Whether a post's outcome is recorded for good (kept, or refused for a lasting reason)."""
        return key in self.decided and key not in self.retry_later
