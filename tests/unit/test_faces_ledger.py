"""The faces stage's compact bookkeeping: digests of done images, the first listing of each image, the contact sheet's pick."""

import json
import random

import numpy as np

from anigan import keys
from anigan.keys import short_digest as image_digest
from preprocess.faces.contact_sheet import FacePick, pick_faces
from preprocess.faces.ledger import DIGEST, Done, Rows
from preprocess.faces.stage import raw_images, read_state


def streamed_pick(face_ids: list[str], count: int, seed: int) -> list[str]:
    pick = FacePick()
    for face_id in face_ids:
        pick.add(face_id)
    pick.choose(count, seed)
    for face_id in reversed(face_ids):  # offered in another order than added
        pick.offer(face_id)
    return sorted(pick.picked())


def test_the_streamed_pick_is_pick_faces():
    rng = random.Random(3)
    # many IDs share their 8-byte prefix (one image, several faces), some are shorter than 8 bytes, one is not ASCII
    ids = [f"{rng.randrange(40):08x}-{rng.getrandbits(48):012x}" for _ in range(3000)] + ["ab", "abc", "ab-ü", "0000000"]
    for count in (0, 1, 64, 2999, 5000):
        for seed in (0, 1, 7):
            assert streamed_pick(ids, count, seed) == pick_faces(ids, count, seed)
    assert streamed_pick([], 64, 0) == []


def test_done_keeps_each_images_last_line_and_forgets_a_flagged_one():
    rows = Rows()
    a, b, c = (image_digest(f"image {k}") for k in range(3))
    rows.append(a, 10, False)
    rows.append(b, 20, False)
    rows.append(a, 30, False)  # a newer line for a
    rows.append(b, 40, True)  # b lost its crops
    rows.append(c, 50, True)
    rows.append(c, 60, False)  # c processed again after losing them
    done = Done.of(rows)
    assert len(done) == 2
    found, offsets = done.find(np.array([a, b, c, image_digest("image 9")], DIGEST))
    assert found[1] == found[3] == -1
    assert offsets[[0, 2]].tolist() == [30, 60]
    assert done.current.tolist() == [False, False, True, False, False, True]  # the lines by number


def test_done_from_many_rows_in_several_digest_ranges(tmp_path, monkeypatch):
    monkeypatch.setattr(keys, "BUCKET_ROWS", 500)  # several ranges of digests, each sorted apart
    rows = Rows(tmp_path)
    latest: dict[bytes, int] = {}
    rng = random.Random(5)
    for line in range(6000):
        digest = image_digest(f"image {rng.randrange(2500)}")
        forget = rng.random() < 0.05
        rows.append(digest, line * 10, forget, line)
        if forget:
            latest.pop(digest, None)
        else:
            latest[digest] = line * 10
    done = Done.of(rows)
    assert len(done) == len(latest)
    asked = [*latest, *(image_digest(f"absent {k}") for k in range(50))]
    rng.shuffle(asked)
    found, offsets = done.find(np.array(asked, DIGEST))
    assert {d: int(o) for d, i, o in zip(asked, found, offsets, strict=True) if i >= 0} == latest
    assert sorted(found[found >= 0].tolist()) == list(range(len(latest)))  # row numbers: one each
    assert sorted(np.flatnonzero(done.current).tolist()) == sorted(o // 10 for o in latest.values())
    done.close()


def test_sorted_file_find_is_get_for_each_key(tmp_path):
    dtype = np.dtype([("key", DIGEST), ("offset", np.int64)])
    digests = sorted({image_digest(f"k{k}") for k in range(1000)})
    rows = np.array([(d, n) for n, d in enumerate(digests)], dtype)
    table = keys.SortedFile(dtype, tmp_path, [rows[:300], rows[300:]], stride=7)
    asked = [digests[0], digests[-1], image_digest("nope"), b"\0" * 17, b"\xff" * 17, *digests[::13], digests[5], digests[5]]
    where, found = table.find(np.array(asked, DIGEST))
    for key, w, row in zip(asked, where.tolist(), found, strict=True):
        expected = table.get(key)
        assert (w >= 0) == (expected is not None)
        if w >= 0:
            assert w == digests.index(key) and row == expected
    assert table.find(np.array([], DIGEST))[0].tolist() == []
    assert keys.SortedFile(dtype, tmp_path).find(np.array(asked[:2], DIGEST))[0].tolist() == [-1, -1]


def test_digests_are_whole_whatever_their_last_bytes():
    ends_in_zero = b"\x01" + b"\0" * 15 + b"\x01"  # numpy drops trailing zero bytes: the end byte keeps them
    rows = Rows()
    rows.append(ends_in_zero, 7, False)
    rows.append(b"\x01" + b"\0" * 14 + b"\x02\x01", 9, False)
    done = Done.of(rows)
    assert len(done) == 2
    assert done.find(np.array([ends_in_zero, b"\x01" + b"\0" * 14 + b"\x02\x01", b"\x01"], DIGEST))[0].tolist() == [0, 1, -1]
    assert len(image_digest("a" * 64)) == len(image_digest("x")) == DIGEST.itemsize
    assert image_digest("0" * 63 + "1") != image_digest("0" * 64)


def test_raw_images_keep_the_first_listing_of_each_image(tmp_path, monkeypatch):
    monkeypatch.setattr(keys, "CHUNK", 3)  # the images listed so far folded to disk every few
    lines = [{"image_id": f"{k % 7:064x}", "post_id": k} for k in range(20)]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert [r["post_id"] for r in raw_images(tmp_path)] == list(range(7))


def test_read_state_is_the_latest_line_of_each_image_under_the_key(tmp_path):
    state = tmp_path / "state.jsonl"
    records = [
        {"image_id": "one", "faces": [], "rejects": [], "key": "old"},
        {"image_id": "one", "faces": [], "rejects": [], "key": "new"},
        {"image_id": "two", "faces": [{"shard": "faces-000000.tar", "offset": 512, "bytes": 100}], "rejects": [], "key": "new"},
        {"image_id": "one", "faces": [], "rejects": [], "key": "new"},
    ]
    lines = [json.dumps(r) + "\n" for r in records]
    state.write_text("".join(lines))
    offsets = np.cumsum([0] + [len(line) for line in lines])
    for lengths, expected in ((None, {"one": offsets[3], "two": offsets[2]}), ({"faces-000000.tar": 512}, {"one": offsets[3]})):
        done = read_state(state, "new", lengths)
        found, at = done.find(np.array([image_digest("one"), image_digest("two")], DIGEST))
        assert {k: int(o) for k, i, o in zip(("one", "two"), found, at, strict=True) if i >= 0} == expected
        assert np.flatnonzero(done.current).tolist() == sorted(np.searchsorted(offsets, list(expected.values())).tolist())
