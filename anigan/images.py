"""Image bytes for files and pages: one PNG encoder and one data-URI builder for every room."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image


def png_bytes(image: Image.Image | np.ndarray) -> bytes:
    """Encode a PIL image or an RGB uint8 array as PNG (the same pixels give the same bytes)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def data_uri(data: bytes, mime: str) -> str:
    """Bytes inlined into a page, so the page works offline and as a single file."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
