"""Parts of a raw folder: each crawl process writes its own; prepare merges the finished ones."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from anigan.errors import UserError
from anigan.ids import sha256_hex
from anigan.shards import Member, iter_members, read_member
from anigan.keys import IMAGE, KeySet, image_digest
from crawler.locks import FolderLock, held
from crawler.parts import PARTS, Part, merged_shard_name, new_part_id, part_folders, shard_prefixes
from crawler.rawfolder import Filters, Ledger, RawFolder

FILTERS = Filters(("general",), 1, 1, 1_000_000, 10_000_000)
QUERY = {"source": "demo", "site": "demo seed=0 posts=40", "tags": ""}


def keep(folder: RawFolder, post_id: int, body: bytes) -> dict:
    record = {"image_id": sha256_hex(body), "source": "demo", "post_id": post_id, "width": 1, "height": 1, "rating": "general"}
    folder.keep(body, "png", record)
    return record


def part(root, name: str) -> RawFolder:
    return RawFolder(root / PARTS / name, shard_size=2)


def lines(folder: RawFolder) -> list[dict]:
    return [json.loads(line) for line in folder.manifest.read_text().splitlines()]


def members(folder: RawFolder) -> Counter:
    """Member names over every shard of the folder."""
    return Counter(name for path in folder.shards.glob("*.tar") for name, _ in iter_members(path))


def test_part_ids_differ_and_merged_shard_names_keep_the_part_apart():
    assert new_part_id() != new_part_id()
    assert merged_shard_name("h-1-ab", "raw-000003.tar") == "raw-h-1-ab-000003.tar"


def test_prepare_merges_finished_parts_every_post_once_every_image_once(tmp_path):
    main = RawFolder(tmp_path, shard_size=2)
    keep(main, 1, b"one")
    main.close()
    a, b = part(tmp_path, "host-1-aa"), part(tmp_path, "host-2-bb")
    keep(a, 2, b"two"), keep(a, 3, b"three"), keep(a, 4, b"four")
    keep(b, 5, b"five"), keep(b, 6, b"two")  # post 6 reposts post 2's bytes: stored by both parts
    a.append_reject({"source": "demo", "post_id": 7, "reason": "truncated", "detail": ""})
    a.close(), b.close()
    result = main.prepare(QUERY, FILTERS, limit=100)
    assert result.merged == 2 and (result.posts, result.images) == (6, 5)
    assert not (tmp_path / PARTS).exists() or not list((tmp_path / PARTS).iterdir())
    records = lines(main)
    assert [r["post_id"] for r in records] == [1, 2, 3, 4, 5, 6]
    for record in records:
        assert sha256_hex(read_member(main.shards, Member.of(record))) == record["image_id"]
    assert records[5]["shard"] == records[1]["shard"] and records[5]["offset"] == records[1]["offset"]
    assert set(members(main).values()) == {1} and len(members(main)) == 5, "an image is stored twice"
    assert set(shard_prefixes(main.shards)) == {"raw", "raw-host-1-aa", "raw-host-2-bb"}
    assert [r["post_id"] for r in main.read_rejects()] == [7]


def test_a_killed_writers_part_is_salvaged_and_a_part_being_written_is_left_alone(tmp_path):
    main = RawFolder(tmp_path)
    killed, live = part(tmp_path, "host-1-aa"), part(tmp_path, "host-2-bb")
    keep(killed, 1, b"one"), keep(killed, 2, b"two"), keep(killed, 3, b"three")  # a shard of 2, then one of 1
    killed.store(b"written, then killed before its line" * 100, "png")
    with open(killed.manifest, "a") as f:
        f.write('{"image_id": "torn')  # and half a line
    keep(live, 4, b"four")
    with FolderLock.take(live.root, 0, "busy"):
        assert held(live.root) and not held(killed.root)
        main.prepare(QUERY, FILTERS, limit=100)
        assert [p.id for p in part_folders(tmp_path)] == ["host-2-bb"], "the part being written was merged"
    assert [r["post_id"] for r in lines(main)] == [1, 2, 3]
    assert sorted(members(main)) == sorted(f"{sha256_hex(b)}.png" for b in (b"one", b"two", b"three"))
    main.prepare(QUERY, FILTERS, limit=100)  # its writer is gone now
    assert [r["post_id"] for r in lines(main)] == [1, 2, 3, 4] and not part_folders(tmp_path)


def test_a_merge_killed_after_moving_shards_resumes(tmp_path):
    main, a = RawFolder(tmp_path), part(tmp_path, "host-1-aa")
    keep(a, 1, b"one"), keep(a, 2, b"two"), keep(a, 3, b"three")
    a.close()
    Part(a.root).move_shards(main.shards)  # the merge got this far
    main.prepare(QUERY, FILTERS, limit=100)
    records = lines(main)
    assert [r["post_id"] for r in records] == [1, 2, 3]
    assert all(sha256_hex(read_member(main.shards, Member.of(r))) == r["image_id"] for r in records)


def test_a_part_of_another_query_is_refused_with_one_line(tmp_path):
    other = part(tmp_path, "elsewhere")
    keep(other, 1, b"one")
    other.close()
    (other.root / "crawl_state.json").write_text(json.dumps({"query": {**QUERY, "tags": "solo"}}))
    with pytest.raises(UserError, match="another query"):
        RawFolder(tmp_path).prepare(QUERY, FILTERS, 100)


def test_a_shard_name_taken_by_other_bytes_is_never_overwritten(tmp_path):
    main, a = RawFolder(tmp_path), part(tmp_path, "host-1-aa")
    keep(a, 1, b"one")
    a.close()
    main.shards.mkdir(parents=True)
    (main.shards / merged_shard_name("host-1-aa", "raw-000000.tar")).write_bytes(b"not this part's")
    with pytest.raises(UserError, match="exists"):
        main.prepare(QUERY, FILTERS, 100)


def test_the_folder_lock_is_refused_while_held_and_free_after(tmp_path):
    lock = FolderLock.take(tmp_path, 0, "busy")
    with pytest.raises(UserError, match="busy"):
        FolderLock.take(tmp_path, 0, "busy")
    lock.release()
    FolderLock.take(tmp_path, 0, "busy").release()


def test_a_key_set_stays_exact_when_its_additions_are_folded_in(tmp_path):
    keys = KeySet.of(IMAGE, [image_digest(sha256_hex(b"%d" % i)) for i in range(10)])
    added = [image_digest(sha256_hex(b"new %d" % i)) for i in range(70_000)]  # more than one fold
    assert all(keys.add(k) for k in added) and not keys.add(added[0])
    assert len(keys) == 70_010 and image_digest(sha256_hex(b"3")) in keys and image_digest(sha256_hex(b"x")) not in keys
    # An image ID whose last byte is zero stays whole in the array.
    zero = "00" * 32
    assert image_digest(zero) in KeySet.of(IMAGE, [image_digest(zero)]) and image_digest("00" * 31 + "01") not in KeySet.of(IMAGE, [image_digest(zero)])


def test_ledger_reads_posts_and_images_as_digests(tmp_path):
    folder = RawFolder(tmp_path)
    keep(folder, 1, b"one")
    folder.close()
    ledger = Ledger(folder, limit=2)
    assert ledger.known("demo:1") and not ledger.known("demo:2") and ledger.image_count == 1
    assert os.path.exists(folder.manifest)


def test_a_raw_folder_from_another_machine_copied_in_as_a_part_is_merged(tmp_path):
    import shutil

    elsewhere = RawFolder(tmp_path / "elsewhere", shard_size=2)
    inner = part(elsewhere.root, "m2-7-cc")
    keep(inner, 1, b"one"), keep(inner, 2, b"two"), keep(inner, 3, b"three")
    inner.close()
    elsewhere.prepare(QUERY, FILTERS, 100)  # what the other machine's crawl leaves: merged shard names
    main = RawFolder(tmp_path / "main", shard_size=2)
    keep(main, 4, b"four")
    main.close()
    shutil.copytree(elsewhere.root, main.root / PARTS / "m2")
    main.prepare(QUERY, FILTERS, 100)
    records = lines(main)
    assert [r["post_id"] for r in records] == [4, 1, 2, 3]
    assert all(sha256_hex(read_member(main.shards, Member.of(r))) == r["image_id"] for r in records)
    assert {r["shard"] for r in records[1:]} == {"raw-m2-m2-7-cc-000000.tar", "raw-m2-m2-7-cc-000001.tar"}
    assert not part_folders(main.root)
