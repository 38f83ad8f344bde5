"""The one item schema every source adapter produces, and what the spider hands the pipeline."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Reasons a post's file is refused (rejects.jsonl). Grouped by what a later run does with them.
PERMANENT_REASONS = ("empty", "not_image", "truncated", "corrupt", "md5_mismatch", "robots", "offsite", "http_error")
# Decided by crawl params: examined again when those params change.
FILTER_REASONS = ("too_small", "too_many_pixels", "too_many_bytes")
# Worth another try on the next run: the server or the network failed after every retry, or a
# CDN answered 403 (a challenge page, a hotlink guard): what it refuses today it may serve tomorrow.
TRANSIENT_REASONS = ("server_error", "rate_limited", "download_failed", "forbidden")
REJECT_REASONS = PERMANENT_REASONS + FILTER_REASONS + TRANSIENT_REASONS


@dataclass(frozen=True)
class Post:
    """One booru post as its API describes it, in the same words for every dialect.

    Fields the API left out are None. `rating` is one of general/sensitive/questionable/explicit
    (each dialect's spelling is mapped by its adapter) or None when the API gave none we know.
    """

    source: str
    post_id: int
    post_url: str
    file_url: str | None
    md5: str | None = None
    width: int | None = None
    height: int | None = None
    tags: tuple[str, ...] = ()
    rating: str | None = None
    ext: str | None = None
    file_size: int | None = None

    @property
    def key(self) -> str:
        """What identifies the post across runs and processes: source and post id."""
        return f"{self.source}:{self.post_id}"


@dataclass(frozen=True)
class ListingPage:
    """One API page turned into posts; `entries` counts every record the API returned (some may
    not have become posts) and `lowest_id` is the smallest post id among them (Danbooru's cursor)."""

    posts: tuple[Post, ...]
    entries: int
    lowest_id: int | None
    problems: tuple[tuple[int | None, str], ...] = field(default=())  # (post id, why it was unreadable)
    # Set when the site says it holds more results than it returned (Gelbooru's depth cap):
    # the listing cannot go on, and the crawl must not call itself finished.
    cut_short: str | None = None


@dataclass
class PostFile:
    """A downloaded file with the post it belongs to: the pipeline validates and stores it."""

    post: Post
    body: bytes = field(repr=False)  # keep logs free of file bytes
    fetched_at: str = ""


@dataclass
class PostRejected:
    """A post whose file will not be kept, and why (one of REJECT_REASONS)."""

    post: Post
    reason: str
    detail: str


@dataclass
class PageDone:
    """Marks the end of one listing page's output (the distributed mode's in-flight bookkeeping)."""

    key: str


def manifest_record(post: Post, image_id: str, width: int, height: int, fetched_at: str) -> dict:
    """One manifest.jsonl line (docs/architecture.md): width/height are the file's, measured, not the API's."""
    return {
        "image_id": image_id,
        "source": post.source,
        "post_id": post.post_id,
        "post_url": post.post_url,
        "file_url": post.file_url,
        "md5": post.md5,
        "width": width,
        "height": height,
        "tags": list(post.tags),
        "rating": post.rating,
        "fetched_at": fetched_at,
    }


def reject_record(post: Post, reason: str, detail: str, at: str) -> dict:
    """One rejects.jsonl line: which post and file, the reason and a sentence of detail."""
    return {
        "source": post.source,
        "post_id": post.post_id,
        "post_url": post.post_url,
        "file_url": post.file_url,
        "reason": reason,
        "detail": detail,
        "rejected_at": at,
    }
