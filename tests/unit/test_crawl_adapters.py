"""Each API dialect's JSON becomes the same Post; listing URLs and cursors follow each site's rules."""

from urllib.parse import parse_qs, urlsplit

import pytest

from crawler.adapters import DIALECTS, SOURCES
from crawler.adapters.common import absolute, ext_of, split_tags

BASE = "https://booru.example"


def query_of(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def test_every_source_names_a_known_dialect_and_public_sites_have_their_domain():
    for name, source in SOURCES.items():
        assert source.dialect in DIALECTS
        if source.base_url:
            host = urlsplit(source.base_url).hostname
            assert any(host == d or host.endswith("." + d) for d in source.domains), name


def test_danbooru_post_fields_and_ratings():
    data = [
        {"id": 12, "md5": "ab" * 16, "file_url": "https://cdn.booru.example/original/x.png", "file_ext": "png",
         "file_size": 1234, "image_width": 800, "image_height": 600, "tag_string": "1girl  solo blue_hair", "rating": "s"},
        {"id": 11, "image_width": 10, "image_height": 10, "tag_string": "", "rating": "x"},  # restricted: no file_url
        {"md5": "no id"},
    ]
    page = DIALECTS["danbooru"].parse_page(BASE, "danbooru", data)
    first, restricted = page.posts
    assert first.post_id == 12 and first.post_url == f"{BASE}/posts/12"
    assert first.file_url == "https://cdn.booru.example/original/x.png"
    assert (first.width, first.height, first.ext, first.file_size) == (800, 600, "png", 1234)
    assert first.tags == ("1girl", "solo", "blue_hair")
    assert first.rating == "sensitive"
    assert restricted.file_url is None and restricted.rating is None
    assert page.entries == 3 and page.lowest_id == 11
    assert page.problems == ((None, "a post without an id"),)


def test_danbooru_pages_by_the_b_cursor_until_an_empty_page():
    d = DIALECTS["danbooru"]
    url = d.page_url(BASE + "/", "1girl solo", d.first_cursor(), 50, {"login": "me", "api_key": "k"})
    assert url.startswith(f"{BASE}/posts.json?")
    assert query_of(url) == {"tags": "1girl solo", "page": "1", "limit": "50", "login": "me", "api_key": "k"}
    page = d.parse_page(BASE, "danbooru", [{"id": 30}, {"id": 21}, {"id": 25}])
    assert d.next_cursor("1", page) == "b21"
    assert d.next_cursor("b21", d.parse_page(BASE, "danbooru", [])) is None


def test_gelbooru_wrapped_posts_escaped_tags_and_id_keyset():
    d = DIALECTS["gelbooru"]
    # As gelbooru.com answers: tags HTML-escaped, numbers sometimes as strings.
    data = {"@attributes": {"limit": 2, "offset": 0, "count": 9}, "post": [
        {"id": "7", "md5": "cd" * 16, "file_url": "https://img3.booru.example/images/a/b/x.jpeg", "width": "640",
         "height": 480, "tags": " 1girl &gt;_&lt; miss_kobayashi&#039;s_dragon_maid ", "rating": "questionable"},
    ]}
    page = d.parse_page(BASE, "gelbooru", data)
    (post,) = page.posts
    assert post.post_id == 7 and post.width == 640 and post.ext == "jpeg"
    assert post.post_url == f"{BASE}/index.php?page=post&s=view&id=7"
    assert post.tags == ("1girl", ">_<", "miss_kobayashi's_dragon_maid") and post.rating == "questionable"
    url = d.page_url(BASE, "smile", d.first_cursor(), 100, {"login": "42", "api_key": "k"})
    assert query_of(url) == {"page": "dapi", "s": "post", "q": "index", "json": "1", "tags": "smile", "pid": "0",
                             "limit": "100", "user_id": "42", "api_key": "k"}
    # Past the first page: pid 0 of the ids below the lowest seen (deep pids hit the depth cap).
    assert d.next_cursor(0, page) == 7
    assert query_of(d.page_url(BASE, "smile", 7, 100, {}))["tags"] == "smile id:<7"
    assert query_of(d.page_url(BASE, "smile", 7, 100, {}))["pid"] == "0"
    # Gelbooru leaves "post" out of an empty page: the end when the count agrees...
    end = d.parse_page(BASE, "gelbooru", {"@attributes": {"limit": 100, "offset": 0, "count": 0}})
    assert d.next_cursor(7, end) is None and end.cut_short is None
    # ...but a count above the offset with no posts is the depth cap: the listing was cut short.
    capped = d.parse_page(BASE, "gelbooru", {"@attributes": {"limit": 100, "offset": 20000, "count": 31000}})
    assert capped.cut_short and "31000" in capped.cut_short


def test_safebooru_bare_list_with_directory_image_and_hash():
    data = [{"id": 5, "directory": "1234", "image": "abc.png", "hash": "ef" * 16, "width": 300, "height": 200,
             "tags": "solo", "rating": "safe"}]
    (post,) = DIALECTS["gelbooru"].parse_page("https://safebooru.example", "safebooru", data).posts
    assert post.file_url == "https://safebooru.example/images/1234/abc.png"
    assert post.md5 == "ef" * 16 and post.ext == "png" and post.rating == "general"


def test_moebooru_safe_means_general_and_pages_are_one_based():
    d = DIALECTS["moebooru"]
    data = [{"id": 3, "md5": "01" * 16, "file_url": "//files.booru.example/image/x.jpg", "file_ext": "jpg",
             "file_size": 99, "width": 1000, "height": 700, "tags": "scenery", "rating": "s"}]
    (post,) = d.parse_page(BASE, "konachan", data).posts
    assert post.file_url == "https://files.booru.example/image/x.jpg"
    assert post.rating == "general" and post.post_url == f"{BASE}/post/show/3"
    assert d.first_cursor() == 1 and d.next_cursor(1, d.parse_page(BASE, "konachan", data)) == 2
    assert query_of(d.page_url(BASE, "", 2, 100, {}))["page"] == "2"


@pytest.mark.parametrize("value, expected", [("a  b ", ("a", "b")), (["x", ""], ("x",)), (None, ())])
def test_split_tags(value, expected):
    assert split_tags(value) == expected


def test_file_urls_made_absolute_and_extensions_read():
    assert absolute(BASE, "/data/x.png") == f"{BASE}/data/x.png"
    assert absolute(BASE, None) is None
    assert ext_of("https://a/b/c.JPG?x=1") == "jpg"
    assert ext_of("https://a/b/c", "WebP") == "webp"
    assert ext_of("https://a/b/noext") is None
