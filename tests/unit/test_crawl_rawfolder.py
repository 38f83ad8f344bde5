"""The raw folder: content-addressed, never partial, and brought in line with the params on resume."""

import json
import os
import subprocess
import tarfile

from anigan.ids import sha256_hex
from anigan.shards import read_member
from crawler.rawfolder import Filters, Ledger, RawFolder
from crawler.reconcile import judge_manifest, judge_rejects

FILTERS = Filters(("general", "sensitive"), 64, 64, 1_000_000, 10_000)
QUERY = {"source": "demo", "site": "demo seed=0 posts=40", "tags": ""}


def rec(post_id: int, image_id: str, rating: str = "general", width: int = 100, height: int = 100, size: int = 10) -> dict:
    # Each image at a place of its own in one shard that holds them all.
    place = {"shard": "raw-000000.tar", "offset": 512 + 1024 * (ord(image_id[0]) - ord("a")), "bytes": size}
    return {"image_id": image_id, "source": "demo", "post_id": post_id, "width": width, "height": height, "rating": rating} | place


def rej(post_id: int, reason: str) -> dict:
    return {"source": "demo", "post_id": post_id, "reason": reason, "detail": ""}


def kept(manifest: list[dict], filters=FILTERS, limit=100, lengths=None) -> tuple[list[dict], dict]:
    """The manifest lines judge_manifest keeps, and what it dropped."""
    verdict = judge_manifest(manifest, filters, limit, {"raw-000000.tar": 1 << 20} if lengths is None else lengths)
    return [r for r, keep in zip(manifest, verdict.keep, strict=True) if keep], verdict.dropped


def remaining(rejects: list[dict], manifest: list[dict], filters_changed: bool) -> list[dict]:
    """The rejects lines judge_rejects writes, in order."""
    emit = judge_rejects(rejects, judge_manifest(manifest, FILTERS, 100, {"raw-000000.tar": 1 << 20}), filters_changed)
    return [rejects[i] for i in emit if i >= 0]


def test_rating_filter_and_unknown_ratings():
    assert FILTERS.rating_ok("sensitive") and not FILTERS.rating_ok("explicit")
    assert not FILTERS.rating_ok(None)
    assert Filters(("general", "sensitive", "questionable", "explicit"), 1, 1, 1, 1).rating_ok(None)


def test_reconcile_drops_what_the_filters_now_refuse():
    manifest = [rec(1, "a"), rec(2, "b", rating="explicit"), rec(3, "c", width=10), rec(4, "d", width=2000, height=2000), rec(5, "e", size=20_000)]
    lines, dropped = kept(manifest)
    assert [r["post_id"] for r in lines] == [1]
    assert dropped == {"rating": 1, "too_small": 1, "too_many_pixels": 1, "too_many_bytes": 1}


def test_reconcile_keeps_the_first_images_up_to_the_limit_with_their_duplicate_posts():
    manifest = [rec(1, "a"), rec(2, "b"), rec(3, "a"), rec(4, "c"), rec(1, "a")]
    lines, dropped = kept(manifest, limit=2)
    assert [r["post_id"] for r in lines] == [1, 2, 3]
    assert dropped == {"over_limit": 1, "duplicate_line": 1}


def test_reconcile_drops_lines_whose_bytes_are_not_whole_unless_a_copy_of_the_image_is():
    torn = rec(1, "a") | {"shard": "raw-000001.tar"}  # its shard was cut short
    manifest = [torn, rec(2, "b") | {"shard": "raw-000001.tar"}, rec(3, "a")]
    verdict = judge_manifest(manifest, FILTERS, 100, {"raw-000000.tar": 1 << 20, "raw-000001.tar": 100})
    assert list(verdict.keep) == [True, False, True]
    # Post 1 names the whole copy of its image (post 3's place); post 2's image is nowhere.
    assert verdict.member(int(verdict.place[0])) == verdict.member(2) and verdict.dropped == {"file_missing": 1}
    assert verdict.images == 1 and verdict.posts == 2


def test_reconcile_names_one_place_for_copies_of_an_image_from_two_parts():
    first, second = rec(1, "a"), rec(2, "a") | {"shard": "raw-p2-000000.tar"}
    verdict = judge_manifest([first, second], FILTERS, 100, {"raw-000000.tar": 1 << 20, "raw-p2-000000.tar": 1 << 20})
    assert list(verdict.place) == [0, 0] and list(verdict.members()) == [verdict.member(0)]


def test_reconcile_rejects_last_word_wins_transient_ones_are_retried():
    rejects = [rej(1, "download_failed"), rej(1, "truncated"), rej(2, "server_error"), rej(3, "too_small"), rej(4, "robots"), rej(5, "md5_mismatch")]
    manifest = [rec(5, "e")]
    same = remaining(rejects, manifest, filters_changed=False)
    assert [(r["post_id"], r["reason"]) for r in same] == [(1, "truncated"), (3, "too_small"), (4, "robots")]
    changed = remaining(rejects, manifest, filters_changed=True)
    assert [r["post_id"] for r in changed] == [1, 4]


def members(folder: RawFolder) -> list[str]:
    """Member names of every shard, in order, as `tar` lists them."""
    names = []
    for shard in sorted(folder.shards.glob("*.tar")):
        names += subprocess.run(["tar", "-tf", str(shard)], check=True, capture_output=True, text=True).stdout.split()
    return names


def keep(folder: RawFolder, post_id: int, body: bytes, ext: str = "png") -> dict:
    record = rec(post_id, sha256_hex(body))
    folder.keep(body, ext, record)
    return record


def test_store_is_content_addressed_and_idempotent(tmp_path):
    folder = RawFolder(tmp_path / "raw")
    image_id, member, new = folder.store(b"bytes", "png")
    assert image_id == sha256_hex(b"bytes") and new
    assert read_member(folder.shards, member) == b"bytes"
    assert folder.store(b"bytes", "png") == (image_id, member, False)
    folder.close()
    assert members(folder) == [f"{image_id}.png"]
    with tarfile.open(folder.shards / member.shard) as tar:  # the WebDataset layout: <key>.<ext>
        assert tar.extractfile(f"{image_id}.png").read() == b"bytes"


def test_shards_hold_shard_size_members_and_records_name_their_place(tmp_path):
    folder = RawFolder(tmp_path, shard_size=2)
    records = [keep(folder, n, f"image {n}".encode()) for n in range(5)]
    folder.close()
    assert sorted(p.name for p in folder.shards.iterdir()) == ["raw-000000.tar", "raw-000001.tar", "raw-000002.tar"]
    assert [r["shard"] for r in folder.read_manifest()] == ["raw-000000.tar"] * 2 + ["raw-000001.tar"] * 2 + ["raw-000002.tar"]
    for n, record in enumerate(folder.read_manifest()):
        assert folder.stored().get(record["image_id"]).offset == record["offset"]
        assert read_member(folder.shards, folder.stored().get(record["image_id"])) == f"image {n}".encode()
    assert len(members(folder)) == 5 and records[0]["bytes"] == len(b"image 0")


def test_prepare_repairs_a_killed_run(tmp_path):
    folder = RawFolder(tmp_path)
    kept = keep(folder, 1, b"kept")
    orphan, member, _ = folder.store(b"orphan", "jpg")  # written, then killed before its manifest line
    folder.close()
    with open(folder.shards / member.shard, "ab") as f:
        f.write(b"half a member")  # and a torn one after it
    torn = json.dumps(rec(2, orphan))[:20]
    with open(folder.manifest, "a") as f:
        f.write(torn)
    folder.prepare(QUERY, FILTERS, limit=10)
    assert [json.loads(line)["post_id"] for line in folder.manifest.read_text().splitlines()] == [1]
    assert members(folder) == [f"{kept['image_id']}.png"]
    again = RawFolder(tmp_path).stored()
    assert len(again) == 1 and again.get(kept["image_id"]) is not None
    # Appending after the repair gives whole lines and whole members in the same shard.
    again = keep(folder, 3, b"another")
    folder.close()
    assert [r["post_id"] for r in folder.read_manifest()] == [1, 3]
    assert members(folder) == [f"{kept['image_id']}.png", f"{again['image_id']}.png"]


def test_prepare_drops_members_no_record_names_by_copying_the_rest(tmp_path):
    folder = RawFolder(tmp_path)
    keep(folder, 1, b"a", "jpg")
    keep(folder, 2, b"b" * 100_000, "jpg")
    keep(folder, 3, b"c", "jpg")
    folder.close()
    lines = folder.manifest.read_text().splitlines()
    folder.manifest.write_text(lines[0] + "\n" + lines[2] + "\n")  # post 2 dropped (by a filter, say)
    folder.prepare(QUERY, FILTERS, limit=10)
    assert members(folder) == [f"{sha256_hex(b'a')}.jpg", f"{sha256_hex(b'c')}.jpg"]
    stored = RawFolder(tmp_path).stored()
    assert [read_member(folder.shards, stored.get(sha256_hex(b))) for b in (b"a", b"c")] == [b"a", b"c"] and len(stored) == 2


def test_a_shard_dvc_links_into_its_cache_is_never_appended_to(tmp_path):
    folder = RawFolder(tmp_path)
    first = keep(folder, 1, b"first")
    folder.close()
    shard = folder.shards / first["shard"]
    os.link(shard, tmp_path / "cache-copy")  # what `cache.type = hardlink` leaves
    before = shard.read_bytes()
    folder.prepare(QUERY, FILTERS, limit=10)
    second = keep(folder, 2, b"second")
    folder.close()
    assert (tmp_path / "cache-copy").read_bytes() == before and shard.read_bytes() == before
    assert second["shard"] != first["shard"]


def test_prepare_drops_records_whose_file_is_gone(tmp_path):
    folder = RawFolder(tmp_path)
    folder.manifest.write_text(json.dumps(rec(1, "f" * 64) | {"shard": "raw-000000.tar", "offset": 512, "bytes": 10}) + "\n")
    result = folder.prepare(QUERY, FILTERS, limit=10)
    assert (result.posts, result.images) == (0, 0) and result.dropped == {"file_missing": 1}
    assert folder.manifest.read_text() == ""


def test_prepare_starts_over_when_the_query_changes(tmp_path):
    folder = RawFolder(tmp_path)
    keep(folder, 1, b"x")
    folder.close()
    folder.state.write_text(json.dumps({"query": QUERY, "filters": FILTERS.as_dict()}))
    (tmp_path / "notes.txt").write_text("not the crawl's")
    assert not folder.prepare(QUERY, FILTERS, 10).started_over
    assert len(folder.read_manifest()) == 1
    result = folder.prepare({**QUERY, "tags": "solo"}, FILTERS, 10)
    assert result.started_over and result.posts == 0
    assert len(folder.stored()) == 0 and not list(folder.shards.glob("*.tar")) and (tmp_path / "notes.txt").exists()


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
