"""Pure pieces of the crawl's dealings with real sites: robots.txt rules, credential masking, the
listing walk record, metadata sidecars, and the account from the environment."""

import logging

import pytest

from anigan.errors import UserError
from crawler import walk as walks
from crawler.items import Post
from crawler.job import account
from crawler.metadata import json_lines, post_info
from crawler.redact import redact, redact_records
from crawler.robots import refusing_rule

DANBOORU_ROBOTS = "User-agent: *\nDisallow: /\nDisallow: /*.json\n"


def test_the_rule_that_refuses_a_url_is_named():
    assert refusing_rule(DANBOORU_ROBOTS, "anigan-crawler (me@example.org)", "https://d.example/posts.json?tags=a") == ("*", "Disallow: /*.json")
    assert refusing_rule(DANBOORU_ROBOTS, "anigan", "https://d.example/posts/1") == ("*", "Disallow: /")
    assert refusing_rule("User-agent: *\nDisallow: /forbidden/\n", "anigan", "https://d.example/posts.json") is None
    # A group for our agent wins over *; Allow wins a tie of lengths.
    text = "User-agent: *\nDisallow: /\n\nUser-agent: anigan-crawler\nAllow: /posts.json\nDisallow: /posts\n"
    assert refusing_rule(text, "anigan-crawler (x)", "https://d.example/posts.json") is None
    assert refusing_rule(text, "anigan-crawler (x)", "https://d.example/posts/7") == ("anigan-crawler", "Disallow: /posts")
    assert refusing_rule("User-agent: *\nDisallow: /*.json$\n", "a", "https://d.example/x.json?y=1") is None


def test_credentials_are_masked_in_urls_and_wherever_they_appear():
    url = "https://gelbooru.example/index.php?tags=a&pid=0&user_id=918273645&api_key=s3cr%2Bt"
    masked = redact(url, ("918273645", "s3cr+t"))
    assert "918273645" not in masked and "s3cr" not in masked and "tags=a&pid=0" in masked
    assert redact("failed with key s3cr+t in the body", ("s3cr+t",)) == "failed with key *** in the body"
    assert redact("login=me&password_hash=abc") == "login=***&password_hash=***"


def test_log_records_are_masked_as_they_are_made(caplog):
    before = logging.getLogRecordFactory()
    try:
        redact_records(("topsecretkey",))
        with caplog.at_level(logging.INFO):
            logging.getLogger("t").info("GET %s", "https://x/?api_key=topsecretkey")
            try:
                raise ValueError("bad key topsecretkey")
            except ValueError:
                logging.getLogger("t").exception("failed")
        text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
        assert "topsecretkey" not in text and "api_key=***" in text
    finally:
        logging.setLogRecordFactory(before)


def test_the_walk_record_round_trips_and_is_dropped_for_other_filters(tmp_path):
    post = Post("demo", 7, "u", "f", tags=("a", "b"))
    walk = walks.after_page(walks.Walk({"ratings": ["general"]}), "b31", 60, (post,), ended=False)
    assert (walk.high, walk.cursor, walk.finished) == (60, "b31", False)
    path = tmp_path / "listing.json"
    walks.save(path, walk)
    assert walks.load(path, {"ratings": ["general"]}) == walk
    assert walks.load(path, {"ratings": ["general", "sensitive"]}) == walks.Walk({"ratings": ["general", "sensitive"]})
    assert walks.refresh_reached(61, 60) is False and walks.refresh_reached(55, 60) and walks.refresh_reached(None, 60)


def test_metadata_of_gallery_dl_and_danbooru_dumps():
    gelbooru = post_info({"id": "5", "hash": "AB" * 16, "tags": "1girl &gt;_&lt; kobayashi&#039;s", "rating": "safe", "category": "gelbooru"})
    assert gelbooru.post_id == 5 and gelbooru.md5 == "ab" * 16 and gelbooru.tags == ("1girl", ">_<", "kobayashi's")
    assert gelbooru.rating == "general"
    danbooru = post_info({"id": 9, "md5": "cd" * 16, "tag_string": "solo smile", "rating": "s", "image_width": 100})
    assert danbooru.rating == "sensitive" and danbooru.tags == ("solo", "smile")
    assert post_info({"width": 3}) is None
    lines = '{"id": 1, "tag_string": "a", "rating": "g"}\nnot json\n{"id": 2, "tags": [{"name": "b"}], "rating": "e"}\n'
    assert [(i.post_id, i.tags, i.rating) for i in json_lines(lines)] == [(1, ("a",), "general"), (2, ("b",), "explicit")]


def test_an_account_is_both_login_and_key_and_gelbooru_wants_the_numeric_id():
    assert account("danbooru", {}) == ("", "")
    assert account("danbooru", {"ANIGAN_BOORU_LOGIN": "me", "ANIGAN_BOORU_API_KEY": "k"}) == ("me", "k")
    with pytest.raises(UserError, match="ANIGAN_BOORU_API_KEY is set but ANIGAN_BOORU_LOGIN is not"):
        account("danbooru", {"ANIGAN_BOORU_API_KEY": "k"})
    with pytest.raises(UserError, match="numeric"):
        account("gelbooru", {"ANIGAN_BOORU_LOGIN": "me", "ANIGAN_BOORU_API_KEY": "k"})


def test_sources_are_declared_once():
    from anigan.params.crawl import PAGE_SIZE_MAX, SITES, SOURCES
    from crawler.adapters import SOURCES as SITE_TABLE

    assert set(SITE_TABLE) == set(SITES) == set(PAGE_SIZE_MAX) and SOURCES == SITES + ("folder",)
