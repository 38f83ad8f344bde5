"""What the crawl keeps: whole, decodable images within the limits whose md5 matches the API."""

import hashlib
import io

import pytest
from PIL import Image

from crawler.demo.generator import bomb_png
from crawler.validate import Limits, check_image

LIMITS = Limits(min_width=64, min_height=64, max_pixels=10_000_000, max_bytes=5_000_000)


def encode(size=(200, 150), fmt="PNG", mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, "teal" if mode == "RGB" else 128).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, ext", [("PNG", "png"), ("JPEG", "jpg"), ("GIF", "gif"), ("WEBP", "webp")])
def test_whole_images_are_kept_under_their_real_extension(fmt, ext):
    data = encode(fmt=fmt)
    verdict = check_image(data, LIMITS, hashlib.md5(data).hexdigest())
    assert verdict.ok and (verdict.width, verdict.height, verdict.ext) == (200, 150, ext)


def test_extension_comes_from_the_bytes_not_the_url():
    # A PNG the API calls .jpg is stored as .png.
    assert check_image(encode(fmt="PNG"), LIMITS).ext == "png"


def test_empty_file():
    assert check_image(b"", LIMITS).reason == "empty"


def test_html_page_is_not_an_image():
    verdict = check_image(b"<!DOCTYPE html><html><body>Just a moment...</body></html>", LIMITS)
    assert verdict.reason == "not_image" and "HTML" in verdict.detail


def test_random_bytes_are_not_an_image():
    assert check_image(bytes(range(256)) * 4, LIMITS).reason == "not_image"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files(fmt):
    data = encode((400, 300), fmt)
    verdict = check_image(data[: len(data) * 6 // 10], LIMITS)
    assert verdict.reason == "truncated"
    assert (verdict.width, verdict.height) == (400, 300)  # the header was read, the pixels were not all there


def test_a_bomb_is_refused_from_its_header_without_decoding():
    # 5000x5000 is below Pillow's own bomb limit, above ours; its pixel data is a few zero bytes,
    # so decoding it would fail as truncated: "too_many_pixels" shows nothing was decoded.
    verdict = check_image(bomb_png(5000), LIMITS)
    assert verdict.reason == "too_many_pixels"
    assert "5000x5000" in verdict.detail and "not decoded" in verdict.detail


def test_a_huge_bomb_that_pillow_refuses_is_also_too_many_pixels():
    assert check_image(bomb_png(40_000), LIMITS).reason == "too_many_pixels"


def test_pixel_limit_is_inclusive():
    data = encode((100, 100))
    assert check_image(data, Limits(1, 1, 10_000, 10**6)).ok
    assert check_image(data, Limits(1, 1, 9_999, 10**6)).reason == "too_many_pixels"


def test_too_small_on_either_side():
    assert check_image(encode((63, 500)), LIMITS).reason == "too_small"
    assert check_image(encode((500, 63)), LIMITS).reason == "too_small"
    assert check_image(encode((64, 64)), LIMITS).ok


def test_md5_mismatch_after_a_good_decode():
    data = encode()
    verdict = check_image(data, LIMITS, "0" * 32)
    assert verdict.reason == "md5_mismatch" and hashlib.md5(data).hexdigest() in verdict.detail
    assert check_image(data, LIMITS, hashlib.md5(data).hexdigest().upper()).ok


def test_more_bytes_than_allowed():
    data = encode()
    assert check_image(data, Limits(1, 1, 10**7, len(data) - 1)).reason == "too_many_bytes"
    assert check_image(data, Limits(1, 1, 10**7, len(data))).ok


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P"])
def test_other_colour_modes_are_kept(mode):
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    assert check_image(encode(mode=mode, fmt=fmt), LIMITS).ok
