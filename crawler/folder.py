"""The folder source: import images a user already holds into the raw folder, as a crawl would.

    anigan crawl --source folder --folder ~/gallery-dl

Every file under the folder with an image extension is read once, checked like a download
(crawler.validate: header first, then a full decode), stored under its sha256 and recorded in the
same manifest and rejects; video and zip files are skipped as a crawl skips such posts. Metadata
beside an image (crawler.metadata) gives its post id, tags and rating, which feed the same
filters as a crawl (`crawl.ratings`, `crawl.tags`); an image without metadata is kept with no
tags. The folder is only read. A rerun reads only files it has not decided yet.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from anigan.errors import UserError
from anigan.ids import sha256_hex
from anigan.params import Params
from crawler.filters import Filters
from crawler.items import Post, manifest_record, reject_record
from crawler.metadata import PostInfo, json_lines, post_info
from crawler.rawfolder import Ledger, RawFolder
from crawler.spider import IMAGE_EXTS, utc_now
from crawler.validate import Limits, check_image

log = logging.getLogger(__name__)

SOURCE = "folder"
NOT_IMAGE_POSTS = frozenset({"mp4", "webm", "mkv", "avi", "mov", "swf", "zip", "ugoira"})


def query_matches(tags: tuple[str, ...], rating: str | None, query: str) -> bool:
    """Booru query semantics on one image: every term holds, `-tag` excludes, `rating:x` filters."""
    names = set(tags)
    for term in query.split():
        negate = term.startswith("-")
        term = term[1:] if negate else term
        if term.startswith("rating:"):
            wanted = term.split(":", 1)[1]
            hit = rating is not None and (rating == wanted or rating[0] == wanted[:1] and len(wanted) == 1)
        else:
            hit = term in names
        if hit == negate:
            return False
    return True


def sidecar(path: Path) -> PostInfo | None:
    """gallery-dl's metadata file for `path`: `<file>.<ext>.json`, else `<file>.json`."""
    for candidate in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if candidate.is_file():
            try:
                return post_info(json.loads(candidate.read_text(encoding="utf-8")))
            except (ValueError, UnicodeDecodeError):
                log.warning("crawl: unreadable metadata %s; the image is read without it", candidate)
    return None


def dumps(root: Path, sidecars: set[Path]) -> tuple[dict[str, PostInfo], dict[str, PostInfo]]:
    """Danbooru-style JSON lines under `root`, by md5 and by post id."""
    by_md5: dict[str, PostInfo] = {}
    by_id: dict[str, PostInfo] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in (".json", ".jsonl") or path in sidecars or not path.is_file():
            continue
        try:
            infos = json_lines(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            continue
        for info in infos:
            if info.md5:
                by_md5[info.md5] = info
            if info.post_id is not None:
                by_id[str(info.post_id)] = info
    return by_md5, by_id


def image_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        ext = path.suffix.lower().lstrip(".")
        if path.is_file() and not path.name.startswith(".") and (ext in IMAGE_EXTS or ext in NOT_IMAGE_POSTS):
            yield path


class FolderImport:
    """One import run; `run()` returns the counts the crawl summary reports."""

    def __init__(self, params: Params, folder: RawFolder, on_progress: Callable[[dict], None] | None = None) -> None:
        cp = params.crawl
        self.root = Path(cp.folder).expanduser()
        self.query = " ".join(cp.tags.split())
        self.filters = Filters(cp.ratings, cp.min_width, cp.min_height, cp.max_pixels, cp.max_bytes, keep_unrated=True)
        self.limits = Limits(cp.min_width, cp.min_height, cp.max_pixels, cp.max_bytes)
        self.folder = folder
        self.ledger = Ledger(folder, cp.limit)
        self.on_progress = on_progress
        self.skipped: Counter[str] = Counter()
        self.new = 0
        self.rejected = 0

    def run(self) -> str:
        files = list(image_files(self.root))
        sidecars = {p.with_name(p.name + ".json") for p in files} | {p.with_suffix(".json") for p in files}
        by_md5, by_id = dumps(self.root, sidecars)
        for path in files:
            if self.ledger.full:
                return "limit"
            self.one(path, by_md5, by_id)
        return "finished"

    def one(self, path: Path, by_md5: dict[str, PostInfo], by_id: dict[str, PostInfo]) -> None:
        relative = path.relative_to(self.root).as_posix()
        info = sidecar(path) or by_id.get(path.stem) or by_md5.get(path.stem.lower())
        ext = path.suffix.lower().lstrip(".")
        if ext in NOT_IMAGE_POSTS:
            self.skipped["not_an_image_post"] += 1
            return
        size = path.stat().st_size
        if size > self.limits.max_bytes:
            body = b""
        else:
            body = path.read_bytes()
            if info is None:  # a dump names files by md5 or id; the bytes' md5 finds the rest
                info = by_md5.get(hashlib.md5(body).hexdigest())
        info = info or PostInfo()
        post = Post(
            source=SOURCE,
            post_id=info.post_id if info.post_id is not None else relative,  # type: ignore[arg-type]
            post_url=info.post_url or relative,
            file_url=relative,
            md5=info.md5,
            tags=info.tags,
            rating=info.rating,
            ext=ext,
        )
        if self.ledger.known(post.key):
            self.skipped["already_have"] += 1
            return
        if not self.filters.rating_ok(post.rating):
            self.skipped["rating"] += 1
            return
        if not query_matches(post.tags, post.rating, self.query):
            self.skipped["tags"] += 1
            return
        if size > self.limits.max_bytes:
            return self.refuse(post, "too_many_bytes", f"{size} bytes, more than max_bytes={self.limits.max_bytes}")
        verdict = check_image(body, self.limits, post.md5)
        if not verdict.ok:
            return self.refuse(post, verdict.reason, verdict.detail)
        image_id = sha256_hex(body)
        if not self.ledger.admits(image_id):
            self.skipped["over_limit"] += 1
            return
        record = manifest_record(post, image_id, verdict.width, verdict.height, utc_now())
        self.folder.keep(body, verdict.ext, record)  # the image first, then its manifest line
        if self.ledger.kept(record):
            self.new += 1
        self.report()

    def refuse(self, post: Post, reason: str, detail: str) -> None:
        record = reject_record(post, reason, detail, utc_now())
        self.folder.append_reject(record)
        self.ledger.rejected(record)
        self.rejected += 1
        log.info("crawl: refused %s (%s): %s", post.file_url, reason, detail)
        self.report()

    def report(self) -> None:
        if self.on_progress:
            self.on_progress({"kept": self.ledger.image_count, "new": self.new, "rejected": self.rejected})


def check_folder(path: str | None) -> Path:
    root = Path(path or "").expanduser()
    if not path or not root.is_dir():
        raise UserError(f"crawl.folder = {path!r}: not a folder; set crawl.folder (or --folder) to the folder of images to import")
    return root.resolve()
