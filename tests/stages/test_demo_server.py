"""The demo booru's HTTP server, over real loopback HTTP: three API dialects, files, robots.txt, faults."""

import json
import urllib.error
import urllib.request
import urllib.robotparser
from urllib.parse import urlencode, urlsplit

import pytest

from crawler.demo.server import LIKE, DemoBooru, Faults

DANBOORU_FIELDS = {"id", "md5", "file_url", "file_ext", "file_size", "image_width", "image_height", "tag_string", "rating", "created_at"}
GELBOORU_FIELDS = {"id", "md5", "file_url", "width", "height", "tags", "rating"}
MOEBOORU_FIELDS = {"id", "md5", "file_url", "file_ext", "file_size", "width", "height", "tags", "rating"}


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def get_json(booru: DemoBooru, path: str, **query):
    status, headers, body = fetch(f"{booru.url}{path}?{urlencode(query)}")
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    return json.loads(body)


def danbooru(booru, **query) -> list[dict]:
    return get_json(booru, "/posts.json", **query)


def gelbooru(booru, **query) -> dict:
    return get_json(booru, "/index.php", page="dapi", s="post", q="index", json=1, **query)


def moebooru(booru, **query) -> list[dict]:
    return get_json(booru, "/post.json", **query)


def ids(rows) -> list[int]:
    return [r["id"] for r in rows]


def all_ids(site, keep=lambda post: True) -> list[int]:
    return sorted((p.post_id for p in site.posts if keep(p)), reverse=True)


# --- Danbooru ---------------------------------------------------------------------------------


def test_danbooru_fields_describe_the_post(demo_booru, demo_site):
    rows = danbooru(demo_booru, limit=200)
    assert ids(rows) == all_ids(demo_site)
    for row in rows:
        post = demo_site.by_id(row["id"])
        assert set(row) == DANBOORU_FIELDS
        assert (row["md5"], row["file_ext"], row["file_size"]) == (post.md5, post.ext, len(post.data))
        assert (row["image_width"], row["image_height"]) == (post.width, post.height)
        assert row["tag_string"].split() == list(post.tags)
        assert row["rating"] == {"general": "g", "sensitive": "s", "questionable": "q", "explicit": "e"}[post.rating]
        assert row["file_url"].startswith(demo_booru.url + "/")


def test_danbooru_pages_are_1_based_and_cover_every_post_once(demo_booru, demo_site):
    pages = [ids(danbooru(demo_booru, page=n, limit=7)) for n in range(1, 11)]
    assert all(len(p) == 7 for p in pages[:8]) and len(pages[8]) == 60 - 56 and pages[9] == []
    assert sum(pages, []) == all_ids(demo_site)
    assert ids(danbooru(demo_booru, limit=7)) == pages[0]  # no page means page 1


def test_danbooru_default_limit_is_20(demo_booru):
    assert ids(danbooru(demo_booru)) == list(range(60, 40, -1))


def test_danbooru_b_and_a_cursors(demo_booru):
    assert ids(danbooru(demo_booru, page="b30", limit=5)) == [29, 28, 27, 26, 25]
    assert ids(danbooru(demo_booru, page="b3", limit=5)) == [2, 1]
    assert ids(danbooru(demo_booru, page="a50", limit=3)) == [53, 52, 51]
    assert ids(danbooru(demo_booru, page="b1", limit=5)) == []


def test_danbooru_tag_queries(demo_booru, demo_site):
    assert ids(danbooru(demo_booru, tags="1girl", limit=200)) == all_ids(demo_site, lambda p: "1girl" in p.tags)
    assert ids(danbooru(demo_booru, tags="-1girl", limit=200)) == all_ids(demo_site, lambda p: "1girl" not in p.tags)
    both = danbooru(demo_booru, tags="multiple_girls -no_humans", limit=200)
    assert both and ids(both) == all_ids(demo_site, lambda p: "multiple_girls" in p.tags)
    assert danbooru(demo_booru, tags="1girl no_humans", limit=200) == []
    for spelling, rating in (("g", "general"), ("general", "general"), ("s", "sensitive"), ("q", "questionable")):
        expected = all_ids(demo_site, lambda p: p.rating == rating)
        assert ids(danbooru(demo_booru, tags=f"rating:{spelling}", limit=200)) == expected
    not_general = danbooru(demo_booru, tags="-rating:g", limit=200)
    assert not_general and {r["rating"] for r in not_general} <= {"s", "q", "e"}


# --- Gelbooru ---------------------------------------------------------------------------------


def test_gelbooru_fields_and_attributes(demo_booru, demo_site):
    body = gelbooru(demo_booru, limit=1000)
    assert body["@attributes"] == {"limit": 1000, "offset": 0, "count": 60}
    assert ids(body["post"]) == all_ids(demo_site)
    for row in body["post"]:
        post = demo_site.by_id(row["id"])
        assert set(row) == GELBOORU_FIELDS
        assert (row["md5"], row["width"], row["height"], row["rating"]) == (post.md5, post.width, post.height, post.rating)
        # As on gelbooru.com, tags arrive HTML-escaped: "anigan's_demo_girls" as "anigan&#039;s_demo_girls".
        assert row["tags"].split() == [t.replace("'", "&#039;") for t in post.tags]
    assert any("&#039;" in row["tags"] for row in body["post"])


def test_gelbooru_pid_is_0_based_and_an_empty_page_has_no_post_key(demo_booru, demo_site):
    pages = [gelbooru(demo_booru, pid=pid, limit=25) for pid in range(4)]
    assert [p["@attributes"]["offset"] for p in pages] == [0, 25, 50, 75]
    assert sum((ids(p["post"]) for p in pages[:3]), []) == all_ids(demo_site)
    assert "post" not in pages[3] and pages[3]["@attributes"]["count"] == 60
    assert ids(gelbooru(demo_booru, limit=5)["post"]) == [60, 59, 58, 57, 56]  # no pid means pid 0


def test_gelbooru_tag_queries(demo_booru, demo_site):
    def query(tags):
        return ids(gelbooru(demo_booru, tags=tags, limit=1000).get("post", []))

    assert query("solo") == all_ids(demo_site, lambda p: "solo" in p.tags)
    assert query("-solo") == all_ids(demo_site, lambda p: "solo" not in p.tags)
    assert query("rating:general") == all_ids(demo_site, lambda p: p.rating == "general")
    assert query("solo -rating:general") == all_ids(demo_site, lambda p: "solo" in p.tags and p.rating != "general")
    assert gelbooru(demo_booru, tags="no_such_tag")["@attributes"]["count"] == 0


def test_gelbooru_needs_the_dapi_parameters(demo_booru):
    assert fetch(f"{demo_booru.url}/index.php?page=post&s=list")[0] == 400


# --- Moebooru ---------------------------------------------------------------------------------


def test_moebooru_fields_pages_and_safe_rating(demo_booru, demo_site):
    first, second = moebooru(demo_booru, page=1, limit=30), moebooru(demo_booru, page=2, limit=30)
    assert ids(first + second) == all_ids(demo_site)
    assert moebooru(demo_booru, page=3, limit=30) == []
    assert len(moebooru(demo_booru)) == 16  # default limit
    for row in first + second:
        post = demo_site.by_id(row["id"])
        assert set(row) == MOEBOORU_FIELDS
        assert (row["md5"], row["file_ext"], row["file_size"]) == (post.md5, post.ext, len(post.data))
        assert (row["width"], row["height"]) == (post.width, post.height)
        assert row["tags"].split() == list(post.tags)
        # Moebooru has no "general": general and sensitive are both "safe".
        assert row["rating"] == {"general": "s", "sensitive": "s", "questionable": "q", "explicit": "e"}[post.rating]


def test_moebooru_tag_queries(demo_booru, demo_site):
    def query(tags):
        return ids(moebooru(demo_booru, tags=tags, limit=100))

    assert query("rating:s") == all_ids(demo_site, lambda p: p.rating in ("general", "sensitive"))
    assert query("rating:safe") == query("rating:s")
    assert query("-rating:s") == all_ids(demo_site, lambda p: p.rating in ("questionable", "explicit"))
    assert query("no_humans") == all_ids(demo_site, lambda p: "no_humans" in p.tags)
    assert query("-no_humans") == all_ids(demo_site, lambda p: "no_humans" not in p.tags)


# --- Files, robots.txt, ground truth ----------------------------------------------------------


def test_every_file_is_served_with_its_bytes_and_content_type(demo_booru, demo_site):
    rows = danbooru(demo_booru, limit=200)
    for row in rows:
        post = demo_site.by_id(row["id"])
        status, headers, body = fetch(row["file_url"])
        assert status == 200
        assert body == post.data
        assert headers["Content-Type"] == post.content_type
        assert int(headers["Content-Length"]) == len(post.data)
    html = next(p for p in demo_site.posts if p.kind == "html")
    assert html.content_type == "image/jpeg"  # the lie the crawl must catch


def test_head_answers_like_get_without_a_body(demo_booru, demo_site):
    post = next(p for p in demo_site.posts if p.kind == "scene" and not p.forbidden)
    request = urllib.request.Request(demo_booru.url + DemoBooru.file_path(post), method="HEAD")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200 and response.read() == b""
        assert response.headers["Content-Type"] == post.content_type
        assert int(response.headers["Content-Length"]) == len(post.data)
    # The connection stays usable: the next GET on the same server gets the whole file.
    assert fetch(demo_booru.url + DemoBooru.file_path(post))[2] == post.data


def test_unknown_paths_are_404(demo_booru, demo_site):
    post = next(p for p in demo_site.posts if not p.forbidden)
    forbidden = next(p for p in demo_site.posts if p.forbidden)
    for path in ("/nope", "/images/", f"/images/{'0' * 32}.png", f"/images/{post.md5}.gif", f"/images/{forbidden.md5}.{forbidden.ext}"):
        assert fetch(demo_booru.url + path)[0] == 404, path


def test_robots_txt_disallows_exactly_the_forbidden_files(demo_booru, demo_site):
    status, headers, body = fetch(demo_booru.url + "/robots.txt")
    assert status == 200 and headers["Content-Type"] == "text/plain"
    robots = urllib.robotparser.RobotFileParser()
    robots.parse(body.decode().splitlines())
    rows = danbooru(demo_booru, limit=200)
    forbidden = {p.post_id for p in demo_site.posts if p.forbidden}
    assert forbidden
    for row in rows:
        allowed = robots.can_fetch("anigan", row["file_url"])
        assert allowed == (row["id"] not in forbidden), row["id"]
        if not allowed:
            assert urlsplit(row["file_url"]).path.startswith("/forbidden/")
            assert fetch(row["file_url"])[0] == 200  # disallowed, not missing: obeying robots.txt is the crawler's job


def test_ground_truth_endpoint_serves_one_record_per_post(demo_booru, demo_site):
    status, _, body = fetch(demo_booru.url + "/anigan/ground_truth.jsonl")
    assert status == 200
    assert [json.loads(line) for line in body.decode().splitlines()] == demo_site.ground_truth()


def test_requests_are_counted_per_path(demo_booru):
    for _ in range(3):
        danbooru(demo_booru, limit=1)
    fetch(demo_booru.url + "/robots.txt")
    fetch(demo_booru.url + "/missing")
    assert demo_booru.requests == {"/posts.json": 3, "/robots.txt": 1, "/missing": 1}


# --- Fault modes ------------------------------------------------------------------------------


def test_every_nth_request_is_rate_limited_with_retry_after(demo_site):
    with DemoBooru(demo_site, faults=Faults(rate_limit_every=3, retry_after=7)) as booru:
        results = [fetch(f"{booru.url}/posts.json?limit=2") for _ in range(9)]
    statuses = [status for status, _, _ in results]
    assert statuses == [200, 200, 429] * 3
    for status, headers, body in results:
        if status == 429:
            assert headers["Retry-After"] == "7"
        else:
            assert ids(json.loads(body)) == [60, 59]
    assert booru.requests["/posts.json"] == 9


def test_faults_are_the_third_positional_argument_as_documented(demo_site):
    with DemoBooru(demo_site, "127.0.0.1", Faults(error_every=1)) as booru:
        assert fetch(booru.url + "/robots.txt")[0] == 500


def test_every_mth_request_fails_with_500_and_rate_limits_win_ties(demo_site):
    with DemoBooru(demo_site, faults=Faults(rate_limit_every=3, error_every=4)) as booru:
        statuses = [fetch(booru.url + "/robots.txt")[0] for _ in range(12)]
    assert statuses == [200, 200, 429, 500, 200, 429, 200, 500, 429, 200, 200, 429]


def test_faults_count_every_path_together(demo_site):
    """Files and API pages share one counter, like a site's rate limit per client."""
    post = demo_site.posts[0]
    with DemoBooru(demo_site, faults=Faults(error_every=2)) as booru:
        first = fetch(f"{booru.url}/posts.json")
        second = fetch(booru.url + DemoBooru.file_path(post))
        third = fetch(booru.url + DemoBooru.file_path(post))
    assert (first[0], second[0], third[0]) == (200, 500, 200)
    assert third[2] == post.data
    assert booru.requests == {"/posts.json": 1, DemoBooru.file_path(post): 2}


def test_slow_responses_are_still_correct(demo_site):
    post = demo_site.posts[-1]
    with DemoBooru(demo_site, faults=Faults(delay=0.01)) as booru:
        rows = danbooru(booru, limit=3)
        status, _, body = fetch(rows[0]["file_url"])
    assert ids(rows) == [60, 59, 58]
    assert status == 200 and body == post.data
    assert booru.requests == {"/posts.json": 1, DemoBooru.file_path(post): 1}


def test_no_faults_by_default(demo_booru):
    assert {fetch(demo_booru.url + "/robots.txt")[0] for _ in range(10)} == {200}


# --- Binding ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org", "127.0.0.1.example.org"])
def test_refuses_to_bind_beyond_loopback(demo_site, host):
    with pytest.raises(ValueError, match="loopback"):
        DemoBooru(demo_site, host=host)


def test_binds_an_ephemeral_loopback_port(demo_site):
    with DemoBooru(demo_site) as one, DemoBooru(demo_site, host="localhost") as two:
        for booru in (one, two):
            url = urlsplit(booru.url)
            assert url.hostname == "127.0.0.1" and url.port > 0
        assert one.url != two.url
        assert ids(danbooru(two, limit=1)) == [60]


def test_stopping_a_server_that_never_started_returns(demo_site):
    # Stopped from a thread the test waits on for a bounded time: a stop() that hangs fails here
    # with a message instead of hanging the suite.
    import threading

    stopper = threading.Thread(target=DemoBooru(demo_site).stop, daemon=True)
    stopper.start()
    stopper.join(timeout=30)
    assert not stopper.is_alive(), "stop() of a server that never started did not return within 30 s"


# --- Real sites' quirks -------------------------------------------------------------------------


def test_like_danbooru_robots_txt_disallows_the_api_for_every_agent(demo_site):
    with DemoBooru(demo_site, quirks=LIKE["danbooru.donmai.us"]) as booru:
        robots = urllib.robotparser.RobotFileParser()
        robots.parse(fetch(booru.url + "/robots.txt")[2].decode().splitlines())
        assert not robots.can_fetch("anigan-crawler", booru.url + "/posts.json?tags=1girl")
        rows = danbooru(booru, limit=200)
    # Restricted posts come without file_url; video and ugoira (zip) posts are listed too.
    assert any("file_url" not in r for r in rows)
    assert {r["file_ext"] for r in rows} >= {"mp4", "zip"}


def test_like_gelbooru_requires_user_id_and_api_key(demo_site):
    from crawler.demo.server import DEMO_API_KEY, DEMO_USER_ID

    with DemoBooru(demo_site, quirks=LIKE["gelbooru.com"]) as booru:
        status, _, body = fetch(f"{booru.url}/index.php?page=dapi&s=post&q=index&json=1")
        assert status == 401 and b"api_key" in body
        ok = gelbooru(booru, user_id=DEMO_USER_ID, api_key=DEMO_API_KEY, limit=1000)
    assert ok["@attributes"]["limit"] == 100 and len(ok["post"]) == 60  # gelbooru.com serves at most 100 a request


def test_gelbooru_depth_cap_and_id_keyset(demo_site):
    from dataclasses import replace

    with DemoBooru(demo_site, quirks=replace(LIKE["safebooru.org"], depth_cap=25)) as booru:
        assert "post" not in gelbooru(booru, pid=2, limit=10)  # offset 20 + 10 reaches past 25
        assert gelbooru(booru, pid=2, limit=10)["@attributes"]["count"] == 60
        below = gelbooru(booru, pid=0, limit=10, tags="id:<31")
    assert ids(below["post"]) == list(range(30, 20, -1))
