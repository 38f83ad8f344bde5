"""Is a downloaded file an image worth keeping? Pure checks on bytes, no files, no network.

The order matters: the header is read first and an image above `max_pixels` is refused before a
single pixel is decoded (a decompression bomb costs nothing); then Pillow verifies the file and
decodes it fully (truncated and corrupt files fail there); then size and md5 are compared.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

# Pillow format -> the extension the file is stored under (its real type, not the URL's claim).
FORMAT_EXT = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif", "MPO": "jpg"}


@dataclass(frozen=True)
class Limits:
    """What the crawl accepts: minimum size, maximum pixel count and file size."""

    min_width: int = 1
    min_height: int = 1
    max_pixels: int = 40_000_000
    max_bytes: int = 30_000_000


@dataclass(frozen=True)
class Verdict:
    """The result of check_image: `reason` is None for a keeper, else a rejects.jsonl reason."""

    reason: str | None
    detail: str = ""
    width: int = 0
    height: int = 0
    ext: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None


def _describe_non_image(body: bytes) -> str:
    head = body[:64].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML page, not an image (a login wall, a challenge page or an error page)"
    if head.startswith((b"{", b"[")):
        return "JSON, not an image"
    return f"not an image format Pillow reads (starts with {body[:8]!r})"


def _broken(error: Exception) -> Verdict:
    message = str(error) or type(error).__name__
    lowered = message.lower()
    if any(word in lowered for word in ("truncat", "end of file", "broken data stream", "premature end")):
        return Verdict("truncated", f"the file ends early: {message}")
    return Verdict("corrupt", f"the file does not decode: {message}")


def check_image(body: bytes, limits: Limits, expected_md5: str | None = None) -> Verdict:
    """Decide whether `body` is a whole, decodable image within `limits` whose md5 matches the API's."""
    if not body:
        return Verdict("empty", "the server sent 0 bytes")
    if len(body) > limits.max_bytes:
        return Verdict("too_many_bytes", f"{len(body)} bytes, more than max_bytes={limits.max_bytes}")
    with warnings.catch_warnings():
        # Pillow warns on big headers; the pixel limit below is ours and is checked first.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(body)) as im:
                width, height = im.size
                fmt = im.format or ""
        except Image.DecompressionBombError as e:
            return Verdict("too_many_pixels", f"refused from the header: {e}")
        except UnidentifiedImageError:
            return Verdict("not_image", _describe_non_image(body))
        except Exception as e:  # noqa: BLE001 - any failure to read a header means "not an image"
            return Verdict("not_image", f"the header does not parse: {e}")
        if width * height > limits.max_pixels:
            return Verdict(
                "too_many_pixels",
                f"{width}x{height} = {width * height} pixels, more than max_pixels={limits.max_pixels} (not decoded)",
                width,
                height,
            )
        try:
            with Image.open(io.BytesIO(body)) as im:
                im.verify()
            with Image.open(io.BytesIO(body)) as im:
                im.load()
        except Image.DecompressionBombError as e:
            return Verdict("too_many_pixels", f"refused while decoding: {e}", width, height)
        except Exception as e:  # noqa: BLE001 - Pillow raises many types for broken data
            verdict = _broken(e)
            return Verdict(verdict.reason, verdict.detail, width, height)
    if width < limits.min_width or height < limits.min_height:
        return Verdict(
            "too_small", f"{width}x{height}, smaller than {limits.min_width}x{limits.min_height}", width, height
        )
    if expected_md5:
        actual = hashlib.md5(body).hexdigest()
        if actual != expected_md5.strip().lower():
            return Verdict("md5_mismatch", f"md5 {actual}, the API says {expected_md5}", width, height)
    return Verdict(None, "", width, height, FORMAT_EXT.get(fmt, fmt.lower() or "bin"))
