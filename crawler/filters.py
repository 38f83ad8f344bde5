"""The params that decide whether a kept file stays kept: a change re-examines earlier decisions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Filters:
    """Ratings and size limits a manifest record must pass."""

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
