"""The crawl's output folder (DESIGN.md): content-addressed images, manifest, rejects, summary.

    images/<sha256[:2]>/<sha256>.<ext>   each distinct file once, named by the sha256 of its bytes
    manifest.jsonl                       one line per kept post; posts with the same bytes share an image_id
    rejects.jsonl                        one line per refused post: reason and detail
    crawl.json                           the summary: counts (DVC metrics)
    crawl_state.json                     what was crawled (source, site, tags) with which filters
    listing.json                         where the listing walk reached, to resume from (crawler.walk)
    ground_truth.jsonl                   the demo booru's truth about its posts (source demo only)

Files are written under a temporary name and renamed, and manifest lines are appended whole and
fsynced, so a killed crawl leaves nothing partial. `reconcile` brings an existing folder in line
with the current params before a run: that is what makes resuming and `dvc repro` safe.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from anigan.files import append_jsonl, atomic_write_bytes, read_json, read_jsonl, write_json, write_jsonl
from anigan.ids import sha256_hex
from crawler.items import FILTER_REASONS, TRANSIENT_REASONS

log = logging.getLogger(__name__)

IMAGES = "images"
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
        why = filters.why_not_kept(record, sizes.get(record.get("image_id", "")))
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
    """Reads and writes one crawl output folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.images = self.root / IMAGES
        self.manifest = self.root / MANIFEST
        self.rejects = self.root / REJECTS
        self.summary = self.root / SUMMARY
        self.state = self.root / STATE
        self.ground_truth = self.root / GROUND_TRUTH
        self.walk = self.root / WALK

    def image_path(self, image_id: str, ext: str) -> Path:
        return self.images / image_id[:2] / f"{image_id}.{ext}"

    def store(self, body: bytes, ext: str, image_id: str | None = None) -> tuple[str, bool]:
        """Write `body` under its content address unless it is there; returns (image ID, newly written)."""
        image_id = image_id or sha256_hex(body)
        path = self.image_path(image_id, ext)
        if path.is_file():
            return image_id, False
        atomic_write_bytes(path, body)
        return image_id, True

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

    def image_files(self) -> dict[str, Path]:
        """Image ID -> file, for every stored image (temporary files excluded)."""
        found: dict[str, Path] = {}
        if self.images.is_dir():
            for path in self.images.glob("*/*"):
                if path.is_file() and not path.name.startswith("."):
                    found[path.name.split(".")[0]] = path
        return found

    def clear(self) -> None:
        """Remove everything a crawl wrote here (and nothing else)."""
        shutil.rmtree(self.images, ignore_errors=True)
        for path in (self.manifest, self.rejects, self.summary, self.state, self.ground_truth, self.walk):
            path.unlink(missing_ok=True)

    def prepare(self, query: dict, filters: Filters, limit: int) -> Reconciled:
        """Make the folder consistent with this run's query and filters before crawling into it.

        A different query (source, site or tags) starts over: the folder holds one crawl. The same
        query resumes: see `reconcile`. Torn lines, temporary files and images no record names are
        removed, so what is left is exactly what the manifest says.
        """
        previous = self.read_state()
        started_over = False
        if previous.get("query") not in (None, query):
            log.warning("crawl: the query changed (%s -> %s); starting over in %s", previous.get("query"), query, self.root)
            self.clear()
            started_over = True
        filters_changed = previous.get("filters") not in (None, filters.as_dict())
        files = self.image_files()
        sizes = {image_id: path.stat().st_size for image_id, path in files.items()}
        result = reconcile(self.read_manifest(), self.read_rejects(), filters, limit, sizes, filters_changed)
        result.started_over = started_over
        referenced = {r["image_id"] for r in result.manifest}
        # Records whose file is gone cannot be trusted; the next crawl fetches those posts again.
        missing = [r for r in result.manifest if r["image_id"] not in files]
        if missing:
            result.dropped["file_missing"] = len(missing)
            result.manifest = [r for r in result.manifest if r["image_id"] in files]
            referenced = {r["image_id"] for r in result.manifest}
        if self.manifest.exists() or result.manifest:
            write_jsonl(self.manifest, result.manifest)
        if self.rejects.exists() or result.rejects:
            write_jsonl(self.rejects, result.rejects)
        if self.images.is_dir():
            for path in self.images.glob("*/*"):
                if path.is_file() and (path.name.startswith(".") or path.name.split(".")[0] not in referenced):
                    path.unlink()
        if any(result.dropped.values()):
            log.info("crawl: reconciled %s with the current params: dropped %s", self.root, result.dropped)
        write_json(self.state, {"query": query, "filters": filters.as_dict()})
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
