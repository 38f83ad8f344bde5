"""Loading any raw image as 8-bit RGB for face detection, or saying in one word why it cannot be.

Booru files come in every mode Pillow knows: grayscale, grayscale+alpha, palette (with or without a
transparent colour), RGBA, CMYK JPEG, 16-bit PNG, EXIF-rotated JPEG, animated GIF/PNG/WebP. All of
them become an upright RGB image here; transparency is flattened onto white, the way boorus show it.
A file that cannot be decoded raises `ImageRejected` with a reason from `REJECT_REASONS`, never
another exception, so the faces stage can record it and go on.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from anigan.shards import Member, read_member

# reason -> what it means (written to rejects.jsonl as `reason`; the detail says more)
REJECT_REASONS = {
    "missing_file": "the manifest lists a file that is not on disk (or not in its shard)",
    "empty_file": "the file has zero bytes",
    "not_an_image": "Pillow does not recognise the bytes as an image",
    "too_large": "width x height is above faces.max_pixels (a decompression bomb or a huge scan)",
    "truncated": "the file ends before the image data does",
    "decode_error": "the image data is corrupt",
}

# Transparent pixels are shown on white by the booru sites; flattening onto white keeps crops alike.
BACKGROUND = (255, 255, 255)


class ImageRejected(Exception):
    """A raw file that cannot become an RGB image; `reason` is a key of REJECT_REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB, flattening alpha onto white and scaling 16/32-bit values to 8 bits."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grayscale PNGs open as I;16 or I: keep the high byte (values are 0..65535).
        values = np.asarray(im, dtype=np.uint32)
        gray = (values >> 8).clip(0, 255).astype(np.uint8) if values.max(initial=0) > 255 else values.astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if im.mode == "F":
        gray = np.asarray(im, dtype=np.float32).clip(0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if im.mode == "P":
        # A palette with a transparent index carries it in info; RGBA keeps that transparency.
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode in ("L", "1", "CMYK", "YCbCr", "LAB", "HSV"):
        return im.convert("RGB")
    if im.mode in ("LA", "La", "PA", "RGBa"):
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        canvas = Image.new("RGB", im.size, BACKGROUND)
        canvas.paste(im, mask=im.getchannel("A"))
        return canvas
    return im.convert("RGB")


class Encoded:
    """An image file's bytes read from a shard, with a name for messages."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name


def load_rgb(path: str | Path | Encoded, max_pixels: int) -> Image.Image:
    """Open `path` (a file, or bytes read from a shard) as an upright 8-bit RGB image (first frame of an animation).

    Raises ImageRejected (never another error) for a missing, empty, unknown, huge, truncated or
    corrupt file. Pillow's global decompression-bomb limit is left alone: `max_pixels` is checked
    from the header, before any pixel is decoded.
    """
    if isinstance(path, Encoded):
        source, size, name = io.BytesIO(path.data), len(path.data), path.name
    else:
        path = Path(path)
        source, name = path, path.name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ImageRejected("missing_file", f"{name} is not on disk") from None

    if size == 0:
        raise ImageRejected("empty_file", f"{name} has zero bytes")
    try:
        with warnings.catch_warnings():
            # Pillow warns about big images and odd chunks; our own limit decides instead.
            warnings.simplefilter("ignore")
            with Image.open(source) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise ImageRejected("too_large", f"{width}x{height} is more than {max_pixels} pixels")
                if getattr(im, "n_frames", 1) > 1:
                    im.seek(0)
                im.load()
                upright = ImageOps.exif_transpose(im)
                return _to_rgb(upright).copy()
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected("not_an_image", f"{name}: not a format Pillow can read") from None
    except Image.DecompressionBombError as e:
        raise ImageRejected("too_large", str(e)) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as e:
        text = str(e)
        reason = "truncated" if "truncated" in text.lower() or isinstance(e, EOFError) else "decode_error"
        raise ImageRejected(reason, f"{name}: {text or type(e).__name__}") from None


def read_encoded(folder: str | Path, record: dict, name: str) -> Encoded:
    """The bytes of the shard member a manifest record names (anigan.shards); raises
    ImageRejected("missing_file") when the record names none or its shard lacks it."""
    member = Member.of(record)
    if member is None:
        raise ImageRejected("missing_file", f"{name}: the manifest names no shard for it")
    try:
        return Encoded(read_member(folder, member), name)
    except OSError as e:
        raise ImageRejected("missing_file", f"{name}: {e}") from None


# Face crops are at most a few hundred pixels a side; anything far bigger is not a face crop.
MAX_FACE_PIXELS = 4096 * 4096


def load_face(path: str | Path | Encoded, max_pixels: int = MAX_FACE_PIXELS) -> np.ndarray:
    """A face file (or, with a larger `max_pixels`, any image) as an RGB uint8 array; raises ImageRejected when it cannot be used."""
    return np.asarray(load_rgb(path, max_pixels))
