"""Every odd raw file becomes an upright RGB image, or is rejected with a reason (never a crash)."""

import io

import numpy as np
import pytest
from PIL import Image

from preprocess.imageio import REJECT_REASONS, ImageRejected, load_rgb

BIG = 40_000_000


def save(tmp_path, name, image, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


def two_tone(mode="RGB", size=(40, 30)):
    """Left half red, right half blue: shows both colour and orientation after loading."""
    a = np.zeros((size[1], size[0], 3), np.uint8)
    a[:, : size[0] // 2] = (220, 30, 30)
    a[:, size[0] // 2 :] = (30, 30, 220)
    return Image.fromarray(a).convert(mode)


def test_plain_rgb_png_loads_unchanged(tmp_path):
    im = load_rgb(save(tmp_path, "a.png", two_tone()), BIG)
    assert im.mode == "RGB" and im.size == (40, 30)
    assert im.getpixel((2, 2)) == (220, 30, 30) and im.getpixel((38, 2)) == (30, 30, 220)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    im = load_rgb(save(tmp_path, "g.png", Image.new("L", (20, 10), 77)), BIG)
    assert im.mode == "RGB" and im.getpixel((3, 3)) == (77, 77, 77)


def test_rgba_is_flattened_onto_white(tmp_path):
    rgba = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    rgba.paste((10, 200, 10, 255), (0, 0, 10, 10))
    im = load_rgb(save(tmp_path, "t.png", rgba), BIG)
    assert im.getpixel((2, 2)) == (10, 200, 10)
    assert im.getpixel((15, 2)) == (255, 255, 255)


def test_palette_with_and_without_transparency(tmp_path):
    plain = two_tone().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    im = load_rgb(save(tmp_path, "p.png", plain), BIG)
    assert im.mode == "RGB" and im.getpixel((2, 2))[0] > 180
    transparent = plain.copy()
    transparent.info["transparency"] = transparent.getpixel((2, 2))
    im = load_rgb(save(tmp_path, "pt.png", transparent, transparency=transparent.getpixel((2, 2))), BIG)
    assert im.getpixel((2, 2)) == (255, 255, 255)


def test_cmyk_jpeg_keeps_its_colours(tmp_path):
    im = load_rgb(save(tmp_path, "c.jpg", two_tone("CMYK"), quality=95), BIG)
    r, g, b = im.getpixel((5, 15))
    assert im.mode == "RGB" and r > 180 and g < 80 and b < 80


def test_sixteen_bit_png_is_scaled_to_eight_bits(tmp_path):
    a = np.full((10, 20), 40000, np.uint16)
    a[:, 10:] = 1000
    path = save(tmp_path, "d.png", Image.fromarray(a))
    assert Image.open(path).mode.startswith("I")
    im = load_rgb(path, BIG)
    assert im.getpixel((2, 2)) == (40000 >> 8,) * 3 and im.getpixel((15, 2)) == (1000 >> 8,) * 3


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = save(tmp_path, "r.jpg", two_tone(), exif=exif.tobytes(), quality=95)
    im = load_rgb(path, BIG)
    assert im.size == (30, 40)
    # red was on the left; after a clockwise turn it is on top
    assert im.getpixel((15, 2))[0] > 180 and im.getpixel((15, 37))[2] > 180


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), c) for c in ((250, 0, 0), (0, 250, 0), (0, 0, 250))]
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(path).n_frames == 3
    r, g, b = load_rgb(path, BIG).getpixel((8, 8))
    assert r > 200 and g < 50 and b < 50


def reason_of(path, max_pixels=BIG):
    with pytest.raises(ImageRejected) as info:
        load_rgb(path, max_pixels)
    assert info.value.reason in REJECT_REASONS
    return info.value.reason


def test_truncated_png_and_jpeg_are_rejected_as_truncated(tmp_path):
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    for ext in ("png", "jpg"):
        buf = io.BytesIO()
        noisy.save(buf, "PNG" if ext == "png" else "JPEG")
        path = tmp_path / f"cut.{ext}"
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        assert reason_of(path) == "truncated"


def test_non_image_empty_and_missing_files_are_rejected(tmp_path):
    html = tmp_path / "page.jpg"
    html.write_text("<!doctype html><html><body>not an image</body></html>")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert reason_of(html) == "not_an_image"
    assert reason_of(empty) == "empty_file"
    assert reason_of(tmp_path / "gone.png") == "missing_file"


def test_an_image_above_max_pixels_is_rejected_before_decoding(tmp_path):
    path = save(tmp_path, "big.png", Image.new("RGB", (300, 200)))
    assert reason_of(path, max_pixels=300 * 200 - 1) == "too_large"
    assert load_rgb(path, 300 * 200).size == (300, 200)


def test_corrupt_image_data_is_rejected_not_raised(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    idat = data.index(b"IDAT")
    data[idat + 4 : idat + 30] = b"\xff" * 26  # scramble the compressed stream
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    assert reason_of(path) in ("decode_error", "truncated")
