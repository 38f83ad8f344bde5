"""The raw folder: content-addressed, never partial, and brought in line with the params on resume."""

import json

from anigan.ids import sha256_hex
from crawler.rawfolder import Filters, Ledger, RawFolder, reconcile

FILTERS = Filters(("general", "sensitive"), 64, 64, 1_000_000, 10_000)
QUERY = {"source": "demo", "site": "demo seed=0 posts=40", "tags": ""}


def rec(post_id: int, image_id: str, rating: str = "general", width: int = 100, height: int = 100) -> dict:
    return {"image_id": image_id, "source": "demo", "post_id": post_id, "width": width, "height": height, "rating": rating}


def rej(post_id: int, reason: str) -> dict:
    return {"source": "demo", "post_id": post_id, "reason": reason, "detail": ""}


def test_rating_filter_and_unknown_ratings():
    assert FILTERS.rating_ok("sensitive") and not FILTERS.rating_ok("explicit")
    assert not FILTERS.rating_ok(None)
    assert Filters(("general", "sensitive", "questionable", "explicit"), 1, 1, 1, 1).rating_ok(None)


def test_reconcile_drops_what_the_filters_now_refuse():
    manifest = [rec(1, "a"), rec(2, "b", rating="explicit"), rec(3, "c", width=10), rec(4, "d", width=2000, height=2000), rec(5, "e")]
    result = reconcile(manifest, [], FILTERS, limit=100, sizes={"e": 20_000}, filters_changed=True)
    assert [r["post_id"] for r in result.manifest] == [1]
    assert result.dropped == {"rating": 1, "too_small": 1, "too_many_pixels": 1, "too_many_bytes": 1}


def test_reconcile_keeps_the_first_images_up_to_the_limit_with_their_duplicate_posts():
    manifest = [rec(1, "a"), rec(2, "b"), rec(3, "a"), rec(4, "c"), rec(1, "a")]
    result = reconcile(manifest, [], FILTERS, limit=2, sizes={}, filters_changed=False)
    assert [r["post_id"] for r in result.manifest] == [1, 2, 3]
    assert result.dropped == {"over_limit": 1, "duplicate_line": 1}


def test_reconcile_rejects_last_word_wins_transient_ones_are_retried():
    rejects = [rej(1, "download_failed"), rej(1, "truncated"), rej(2, "server_error"), rej(3, "too_small"), rej(4, "robots"), rej(5, "md5_mismatch")]
    manifest = [rec(5, "e")]
    same = reconcile(manifest, rejects, FILTERS, 100, {}, filters_changed=False)
    assert {(r["post_id"], r["reason"]) for r in same.rejects} == {(1, "truncated"), (3, "too_small"), (4, "robots")}
    changed = reconcile(manifest, rejects, FILTERS, 100, {}, filters_changed=True)
    assert {r["post_id"] for r in changed.rejects} == {1, 4}


def test_store_is_content_addressed_and_idempotent(tmp_path):
    folder = RawFolder(tmp_path / "raw")
    image_id, new = folder.store(b"bytes", "png")
    assert image_id == sha256_hex(b"bytes") and new
    assert (tmp_path / "raw" / "images" / image_id[:2] / f"{image_id}.png").read_bytes() == b"bytes"
    assert folder.store(b"bytes", "png") == (image_id, False)
    assert [p.name for p in (tmp_path / "raw" / "images" / image_id[:2]).iterdir()] == [f"{image_id}.png"]


def test_prepare_repairs_a_killed_run(tmp_path):
    folder = RawFolder(tmp_path)
    kept, _ = folder.store(b"kept", "jpg")
    orphan, _ = folder.store(b"orphan", "jpg")  # written, then killed before its manifest line
    (folder.images / kept[:2] / f".{kept}.jpg.abc.tmp").write_bytes(b"half")
    torn = json.dumps(rec(2, orphan))[:20]
    folder.manifest.write_text(json.dumps(rec(1, kept)) + "\n" + torn)
    folder.prepare(QUERY, FILTERS, limit=10)
    assert [json.loads(line)["post_id"] for line in folder.manifest.read_text().splitlines()] == [1]
    assert set(folder.image_files()) == {kept}
    assert [p.name for p in folder.images.glob("*/*")] == [f"{kept}.jpg"]
    # Appending after the repair gives whole lines.
    folder.append_manifest(rec(3, kept))
    assert [r["post_id"] for r in folder.read_manifest()] == [1, 3]


def test_prepare_drops_records_whose_file_is_gone(tmp_path):
    folder = RawFolder(tmp_path)
    folder.manifest.write_text(json.dumps(rec(1, "f" * 64)) + "\n")
    result = folder.prepare(QUERY, FILTERS, limit=10)
    assert result.manifest == [] and result.dropped == {"file_missing": 1}


def test_prepare_starts_over_when_the_query_changes(tmp_path):
    folder = RawFolder(tmp_path)
    image_id, _ = folder.store(b"x", "png")
    folder.append_manifest(rec(1, image_id))
    folder.state.write_text(json.dumps({"query": QUERY, "filters": FILTERS.as_dict()}))
    (tmp_path / "notes.txt").write_text("not the crawl's")
    assert not folder.prepare(QUERY, FILTERS, 10).started_over
    assert len(folder.read_manifest()) == 1
    result = folder.prepare({**QUERY, "tags": "solo"}, FILTERS, 10)
    assert result.started_over and result.manifest == []
    assert folder.image_files() == {} and (tmp_path / "notes.txt").exists()


def test_ledger_counts_images_not_posts_against_the_limit(tmp_path):
    folder = RawFolder(tmp_path)
    folder.append_manifest(rec(1, "a"))
    folder.append_reject(rej(2, "truncated"))
    ledger = Ledger(folder, limit=2)
    assert ledger.known("demo:1") and ledger.known("demo:2") and not ledger.known("demo:3")
    assert not ledger.full
    assert ledger.kept(rec(3, "a")) is False  # same bytes as post 1: no new image
    assert not ledger.full and ledger.admits("b")
    assert ledger.kept(rec(4, "b")) is True
    assert ledger.full and ledger.admits("a") and not ledger.admits("c")
