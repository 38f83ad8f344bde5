"""The crawl's keys on disk: row files read back by bucket, sorted files looked up and merged, exactly."""

import subprocess
import sys
from itertools import pairwise

import numpy as np

from anigan.ids import sha256_hex
from anigan.shards import Member
from crawler.filters import Filters
from anigan.keys import CHUNK, IMAGE, POST, STRIDE, KeySet, RowFile, SortedFile, count_distinct, image_digest, post_digest
from crawler.rawfolder import Places
from crawler.reconcile import judge_manifest

ROW = np.dtype([("key", IMAGE), ("value", np.int64)])


def twins(count: int) -> list[str]:
    """Image IDs that share their first 8 bytes (one bucket, one leading uint64) and differ after."""
    return ["ab" * 8 + f"{i:048x}" for i in range(count)]


def test_a_spill_hands_back_every_row_once_by_bucket_in_append_order(tmp_path):
    spill = RowFile([("image", IMAGE), ("line", np.int64)], tmp_path)
    ids = [image_digest(sha256_hex(b"%d" % (i % 700))) for i in range(5000)]  # repeats, as reposts
    for line, key in enumerate(ids):
        spill.append((key, line))
    buckets = list(spill.buckets("image", 7))
    assert len(buckets) == 7 and sum(len(b) for b in buckets) == 5000
    assert sorted(np.concatenate([b["line"] for b in buckets]).tolist()) == list(range(5000))
    for bucket in buckets:
        assert (np.diff(bucket["line"]) > 0).all()  # append order within a bucket
    edges = [(min(b["image"]), max(b["image"])) for b in buckets if len(b)]
    assert all(high < low for (_, high), (low, _) in pairwise(edges))  # ranges in digest order
    assert count_distinct(spill, "image") == 700
    assert next(spill.chunks())["line"][3] == 3 and int(spill.row(4321)["line"]) == 4321
    spill.close()


def test_digests_sharing_their_leading_bytes_stay_apart():
    ids = twins(5)
    spill = RowFile([("image", IMAGE)])
    for image_id in ids + ids[:2]:
        spill.append((image_digest(image_id),))
    assert count_distinct(spill, "image") == 5
    keys = KeySet.of(IMAGE, (image_digest(i) for i in ids[:3]))
    assert image_digest(ids[2]) in keys and image_digest(ids[3]) not in keys
    manifest = [{"image_id": image_id, "source": "demo", "post_id": n, "width": 100, "height": 100, "rating": "general", "shard": "raw-000000.tar",
                 "offset": 512 + 1024 * n, "bytes": 10} for n, image_id in enumerate(ids)]  # fmt: skip
    verdict = judge_manifest(manifest, Filters(("general",), 64, 64, 10**6, 10**4), 3, {"raw-000000.tar": 1 << 20})
    assert verdict.keep.tolist() == [True, True, True, False, False] and verdict.images == 3 and verdict.dropped == {"over_limit": 2}
    verdict.close()


def test_a_sorted_file_finds_every_key_across_merges_and_no_other(tmp_path):
    keys = [image_digest(sha256_hex(b"%d" % i)) for i in range(3 * STRIDE + 5)]
    first = np.array(sorted((k, i) for i, k in enumerate(keys[:STRIDE * 2 + 1])), ROW)
    rows = SortedFile(ROW, tmp_path, [first[: STRIDE + 3], first[STRIDE + 3 :]])
    rows.merge(np.array([(k, i) for i, k in enumerate(keys) if i > STRIDE * 2], ROW))  # any order
    rows.merge(np.array([(image_digest("00" * 32), -1), (image_digest("ff" * 32), -2)], ROW))  # before and after every key
    assert len(rows) == len(keys) + 2
    for i, key in enumerate(keys):
        assert int(rows.get(key)["value"]) == i
    assert int(rows.get(image_digest("00" * 32))["value"]) == -1 and int(rows.get(image_digest("ff" * 32))["value"]) == -2
    assert rows.get(image_digest(sha256_hex(b"absent"))) is None and image_digest("00" * 31 + "01") not in rows
    together = np.concatenate(list(rows.blocks()))["key"]
    assert (together[1:] > together[:-1]).all()
    copy = rows.copy()
    rows.close()
    assert keys[7] in copy


def test_a_key_set_folds_its_additions_into_the_file_and_stays_exact():
    keys = KeySet.of(POST, [post_digest(f"demo:{i}") for i in range(100)])
    assert not keys.add(post_digest("demo:5"))
    for i in range(100, 100 + 2 * CHUNK + 10):  # two folds and a few left in memory
        assert keys.add(post_digest(f"demo:{i}"))
    assert len(keys) == 2 * CHUNK + 110 and len(keys._added) == 10
    assert all(post_digest(f"demo:{i}") in keys for i in (0, 99, 100, CHUNK + 50, 2 * CHUNK + 109))
    assert post_digest("demo:-1") not in keys and not keys.add(post_digest(f"demo:{CHUNK}"))


def test_places_keep_the_first_place_of_an_image_and_what_a_run_adds_past_a_fold(tmp_path):
    records = [{"image_id": sha256_hex(b"%d" % (i % 50)), "shard": f"raw-{i // 40:06d}.tar", "offset": 512 + i, "bytes": i} for i in range(120)]
    places = Places(records, tmp_path)
    assert len(places) == 50 and places.get(sha256_hex(b"7")) == Member("raw-000000.tar", 519, 7)  # its first line, not line 57
    added = {sha256_hex(b"new %d" % i): Member(f"raw-{9 + i // 2000:06d}.tar", 512 + i, 1) for i in range(CHUNK + 3)}
    for image_id, member in added.items():
        places.add(image_id, member)
    assert len(places) == 50 + CHUNK + 3
    assert all(places.get(image_id) == added[image_id] for image_id in list(added)[:: 997])
    assert places.get(sha256_hex(b"49")) == Member("raw-000001.tar", 561, 49) and places.get(sha256_hex(b"none")) is None


def test_a_killed_process_leaves_no_temporary_file_behind(tmp_path):
    script = (
        "import sys, time\n"
        "from anigan.keys import IMAGE, KeySet, RowFile\n"
        f"spill = RowFile([('k', IMAGE)], {str(tmp_path)!r})\n"
        "for i in range(10000): spill.append((b'%032d' % i,))\n"
        "spill.flush()\n"
        f"keys = KeySet.of(IMAGE, (b'%032d' % i for i in range(10000)), {str(tmp_path)!r})\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        assert list(tmp_path.iterdir()) == []  # unlinked while in use
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert list(tmp_path.iterdir()) == []
