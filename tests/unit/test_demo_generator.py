"""The demo booru's generator: deterministic posts, planted edge cases as described, honest tags and truth."""

import hashlib
import io
import re

import numpy as np
import pytest
from PIL import Image

from anigan.colors import EYE_COLORS, HAIR_COLORS
from anigan.ids import sha256_hex
from crawler.demo.generator import EDGE_KINDS, RATINGS, generate_site

PLANTED_KINDS = set(EDGE_KINDS) - {"forbidden"}  # a forbidden post is an ordinary scene behind robots.txt


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _kind(site, kind):
    posts = [p for p in site.posts if p.kind == kind]
    assert posts, f"no {kind} post"
    return posts


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_same_seed_gives_the_same_bytes(demo_site):
    again = generate_site(seed=0, posts=60)
    assert [p.data for p in again.posts] == [p.data for p in demo_site.posts]
    assert again.ground_truth() == demo_site.ground_truth()


def test_another_seed_gives_other_posts(demo_site):
    other = generate_site(seed=1, posts=60)
    # The HTML page and the bomb are fixed files, the same under every seed.
    drawn = [(a, b) for a, b in zip(demo_site.posts, other.posts) if a.kind not in ("html", "bomb", "zero_byte")]
    assert len(drawn) >= 50
    assert all(a.data != b.data for a, b in drawn)


def test_more_posts_keep_the_earlier_ones():
    small, large = generate_site(seed=3, posts=20), generate_site(seed=3, posts=30)
    # Edge cases sit at slots that depend on the post count; ordinary scenes come from (seed, id) alone.
    scenes = [p for p in small.posts if p.kind in ("scene", "no_face") and large.by_id(p.post_id).kind == p.kind]
    assert len(scenes) >= 10
    for post in scenes:
        assert large.by_id(post.post_id) == post


def test_ids_run_from_one_and_by_id_finds_each(demo_site):
    assert [p.post_id for p in demo_site.posts] == list(range(1, 61))
    assert all(demo_site.by_id(p.post_id) is p for p in demo_site.posts)
    with pytest.raises(KeyError):
        demo_site.by_id(61)


def test_every_planted_kind_appears_once_posts_reach_40(demo_site):
    for site in (generate_site(seed=5, posts=40), demo_site):
        kinds = {p.kind for p in site.posts}
        assert PLANTED_KINDS <= kinds
        assert any(p.forbidden for p in site.posts)


def test_edge_cases_are_spread_through_the_id_range(demo_site):
    ids = [p.post_id for p in demo_site.posts if p.kind in PLANTED_KINDS]
    assert min(ids) <= 10 and max(ids) >= 50


def test_a_few_posts_still_make_a_valid_site():
    site = generate_site(seed=0, posts=5)
    assert len(site.posts) == 5
    assert all(p.data for p in site.posts if p.kind in ("scene", "no_face"))


def test_truncated_file_fails_to_load(demo_site):
    for post in _kind(demo_site, "truncated"):
        assert post.data and post.md5 != _md5(post.data)
        with pytest.raises(OSError):
            _open(post.data)


def test_zero_byte_file_is_empty(demo_site):
    for post in _kind(demo_site, "zero_byte"):
        assert post.data == b""
        assert post.width > 0 and post.height > 0  # the API still describes an image


def test_html_page_is_not_an_image(demo_site):
    for post in _kind(demo_site, "html"):
        assert post.data.lstrip().lower().startswith(b"<!doctype html")
        assert post.content_type.startswith("image/")
        with pytest.raises(Image.UnidentifiedImageError):
            _open(post.data)


def test_bomb_claims_a_huge_size_in_a_small_file(demo_site):
    for post in _kind(demo_site, "bomb"):
        assert len(post.data) < 1024
        assert post.width * post.height > 10**9
        try:
            with Image.open(io.BytesIO(post.data)) as image:
                assert image.size[0] * image.size[1] > 10**9
        except Image.DecompressionBombError:
            pass


@pytest.mark.parametrize(("kind", "mode"), [("grayscale", "L"), ("rgba", "RGBA"), ("cmyk", "CMYK")])
def test_odd_colour_modes(demo_site, kind, mode):
    for post in _kind(demo_site, kind):
        image = _open(post.data)
        assert image.mode == mode
        assert image.size == (post.width, post.height)
        assert post.faces


def test_rgba_has_transparent_pixels(demo_site):
    for post in _kind(demo_site, "rgba"):
        alpha = np.asarray(_open(post.data).getchannel("A"))
        assert (alpha == 0).any() and (alpha == 255).any()


def test_cmyk_is_a_jpeg(demo_site):
    for post in _kind(demo_site, "cmyk"):
        assert _open(post.data).format == "JPEG" and post.content_type == "image/jpeg"


def test_animated_gif_has_frames(demo_site):
    for post in _kind(demo_site, "animated_gif"):
        image = _open(post.data)
        assert image.format == "GIF" and post.ext == "gif"
        assert image.n_frames > 1


def test_too_small_is_tiny_but_decodes(demo_site):
    for post in _kind(demo_site, "too_small"):
        assert max(_open(post.data).size) < 64


def _pixels(data: bytes, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(_open(data).convert("RGB").resize(size, Image.BILINEAR), np.float32)


@pytest.mark.parametrize("kind", ["near_duplicate_jpeg", "near_duplicate_resized", "near_duplicate_shifted"])
def test_near_duplicates_look_like_their_original_but_differ_in_bytes(demo_site, kind):
    for post in _kind(demo_site, kind):
        original = demo_site.by_id(post.duplicate_of)
        assert original.post_id < post.post_id and original.faces
        assert post.data != original.data and post.md5 != original.md5
        size = _open(original.data).size
        close = np.abs(_pixels(post.data, size) - _pixels(original.data, size)).mean()
        # For scale: the same comparison against an unrelated scene post.
        other = next(p for p in demo_site.posts if p.kind == "scene" and p.post_id not in (post.post_id, original.post_id, original.duplicate_of))
        far = np.abs(_pixels(other.data, size) - _pixels(original.data, size)).mean()
        # a shift moves every edge, and line art has many: a 4x3 px shift differs by about 9 on the
        # outlined drawings (5 on the flat ones), against 55 for another post
        assert close < 12, f"{kind}: mean difference {close:.1f}"
        assert close < far / 3


def test_exact_duplicates_are_byte_identical(demo_site):
    for post in _kind(demo_site, "exact_duplicate"):
        original = demo_site.by_id(post.duplicate_of)
        assert post.data == original.data and post.md5 == original.md5
        assert post.faces == original.faces


def test_api_md5_matches_the_bytes_except_where_planted(demo_site):
    mismatched = {"md5_mismatch", "truncated", "zero_byte", "html"}
    for post in demo_site.posts:
        if post.kind in mismatched:
            assert post.md5 != _md5(post.data), post.kind
        else:
            assert post.md5 == _md5(post.data), post.kind
    assert _kind(demo_site, "md5_mismatch")


def test_decodable_posts_report_their_real_size_and_type(demo_site):
    formats = {"png": "PNG", "jpg": "JPEG", "gif": "GIF"}
    types = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif"}
    for post in demo_site.posts:
        assert post.content_type == types[post.ext]
        if post.kind in ("truncated", "zero_byte", "html", "bomb"):
            continue
        image = _open(post.data)
        assert image.format == formats[post.ext]
        assert image.size == (post.width, post.height), post.post_id


def test_tags_describe_the_drawn_faces(demo_site):
    for post in demo_site.posts:
        if post.kind in ("html", "bomb"):
            continue  # the API describes an image the file is not
        tags = set(post.tags)
        n = len(post.faces)
        if n == 0:
            assert "no_humans" in tags and not tags & {"1girl", "solo", "multiple_girls"}
        elif n == 1:
            assert {"1girl", "solo"} <= tags and "multiple_girls" not in tags
        else:
            assert {f"{n}girls", "multiple_girls"} <= tags and "solo" not in tags
        for face in post.faces:
            assert face.hair_color in HAIR_COLORS and face.eye_color in EYE_COLORS
            assert {f"{face.hair_color}_hair", f"{face.eye_color}_eyes"} <= tags
        drawn_colours = {f"{f.hair_color}_hair" for f in post.faces} | {f"{f.eye_color}_eyes" for f in post.faces}
        assert {t for t in tags if re.fullmatch(r"[a-z]+_(hair|eyes)", t)} == drawn_colours


def test_face_counts_vary(demo_site):
    counts = {len(p.faces) for p in demo_site.posts if p.kind == "scene"}
    assert {1, 2} <= counts and max(counts) <= 3
    assert _kind(demo_site, "no_face")


def test_ratings_are_the_four_danbooru_words(demo_site):
    ratings = {p.rating for p in demo_site.posts}
    assert ratings <= set(RATINGS) and len(ratings) >= 2


def test_ground_truth_records_are_complete(demo_site):
    records = demo_site.ground_truth()
    assert [r["post_id"] for r in records] == [p.post_id for p in demo_site.posts]
    for record, post in zip(records, demo_site.posts):
        assert set(record) == {"post_id", "image_id", "md5", "kind", "duplicate_of", "faces"}
        assert record["image_id"] == sha256_hex(post.data) == hashlib.sha256(post.data).hexdigest()
        assert record["md5"] == post.md5 and record["kind"] == post.kind and record["duplicate_of"] == post.duplicate_of
        assert record["faces"] == [{"box": list(f.box), "hair_color": f.hair_color, "eye_color": f.eye_color} for f in post.faces]
    duplicates = [r for r in records if r["duplicate_of"] is not None]
    assert {r["kind"] for r in duplicates} >= {"exact_duplicate", "near_duplicate_jpeg", "near_duplicate_resized", "near_duplicate_shifted"}


def test_face_boxes_lie_inside_the_image(demo_site):
    faces = 0
    for post in demo_site.posts:
        for face in post.faces:
            x, y, w, h = face.box
            assert w > 0 and h > 0
            assert x >= 0 and y >= 0 and x + w <= post.width and y + h <= post.height, (post.post_id, face.box)
            faces += 1
    assert faces >= 40


def test_forbidden_posts_are_ordinary_scenes(demo_site):
    forbidden = [p for p in demo_site.posts if p.forbidden]
    assert forbidden
    for post in forbidden:
        assert post.kind == "scene" and post.faces
        _open(post.data)
