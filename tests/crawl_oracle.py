"""What a crawl of the demo booru must produce, derived from the generator's description of each
post (kind, rating, tags, sizes), never from an earlier crawl. Shared by the crawl stage tests."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from anigan.params import Params, load_params

ALL_RATINGS = ["general", "sensitive", "questionable", "explicit"]
# What each planted bad file must be refused as (forbidden posts: "robots").
REASON_BY_KIND = {
    "truncated": "truncated",
    "zero_byte": "empty",
    "html": "not_image",
    "bomb": "too_many_pixels",
    "too_small": "too_small",
    "md5_mismatch": "md5_mismatch",
}


def crawl_params(out: Path, base_url: str, **crawl) -> Params:
    """Params of a test crawl of `base_url` into `out`: every rating, up to 1,000 posts, 10 a page,
    no pause between retries; `crawl` sets more crawl.* keys (shard_size=3, concurrency=2, ...)."""
    overrides = {
        "paths.raw": str(out),
        "crawl.base_url": base_url,
        "crawl.page_size": 10,
        "crawl.limit": 1000,
        "crawl.retry_backoff": 0.0,
        "crawl.ratings": ALL_RATINGS,
        **{f"crawl.{key}": value for key, value in crawl.items()},
    }
    return load_params(None, overrides)


def expected(site, ratings=tuple(ALL_RATINGS), tags=(), min_width=64, min_height=64, max_bytes=None, api_sizes=True):
    """(post ids kept, {post id: reject reason}) as the generator's description of each post says.

    The crawler's order: what the API states (size; file size where the dialect gives it) is
    refused before any request, robots.txt before a download, the bytes' own faults last.
    """
    kept, rejected = set(), {}
    for post in site.posts:
        if post.rating not in ratings or not all(t in post.tags for t in tags):
            continue
        too_big = max_bytes is not None and len(post.data) > max_bytes
        reason = None
        if post.width < min_width or post.height < min_height:
            reason = "too_small"
        elif post.kind == "bomb":
            reason = "too_many_pixels"
        elif too_big and api_sizes:
            reason = "too_many_bytes"
        elif post.forbidden:
            reason = "robots"
        elif too_big:
            reason = "too_many_bytes"
        else:
            reason = REASON_BY_KIND.get(post.kind)
        if reason:
            rejected[post.post_id] = reason
        else:
            kept.add(post.post_id)
    return kept, rejected


def read(out: Path, name: str) -> list[dict]:
    """The records of a JSON Lines file in a crawl output (none when it is absent)."""
    path = out / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def stored_files(out: Path) -> dict[str, bytes]:
    """Every member of the raw folder's image shards, read as `tar` reads them; no name twice."""
    import tarfile

    files: dict[str, bytes] = {}
    for shard in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                assert member.name not in files, f"{member.name} is stored twice"
                files[member.name] = tar.extractfile(member).read()
    return files


def file_requests(booru) -> Counter:
    """Requests the demo booru served for post files, by path."""
    return Counter({path: n for path, n in booru.requests.items() if path.startswith(("/images/", "/forbidden/"))})
