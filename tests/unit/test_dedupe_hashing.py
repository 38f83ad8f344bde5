"""Perceptual and exact hashes of face crops, and joining faces into groups."""

import cv2
import numpy as np
import pytest
from scipy.fft import dctn

from anigan.ids import sha256_hex
from anigan.params import load_params
from anigan.shards import Member, ShardWriter
from preprocess import groups
from preprocess.dedupe.hamming_index import popcount64
from preprocess.dedupe.phash import FaceHash, HashFailure, Source, from_hex, hash_files, phash_from_gray, pixel_digest, thumbnail, to_hex
from preprocess.groups import components, same_key_edges
from tests.faces_folder import KINDS, crop, drawing, plant

DEFAULT_MAX_DISTANCE = load_params(None).dedupe.max_distance


def phash(rgb: np.ndarray) -> int:
    return int(phash_from_gray(thumbnail(rgb)[None])[0])


def test_phash_is_the_sign_of_low_dct_frequencies_against_their_median():
    gray = np.random.default_rng(0).uniform(0, 255, (3, 32, 32))
    low = np.stack([dctn(g, norm="ortho")[:8, 0:16:2].reshape(64) for g in gray])
    expected = [int("".join("1" if c > np.median(row[1:]) else "0" for c in row), 2) for row in low]
    assert phash_from_gray(gray).tolist() == expected


def test_a_mirrored_copy_has_the_same_hash_and_a_flipped_one_does_not():
    face = crop(drawing(5))
    assert phash(face[:, ::-1]) == phash(face)
    assert phash(face[::-1]) != phash(face)


def test_hex_round_trip_keeps_all_64_bits():
    for value in (0, 1, 2**63 + 5, 2**64 - 1):
        assert len(to_hex(value)) == 16 and from_hex(to_hex(value)) == value


@pytest.mark.parametrize("kind", KINDS)
def test_planted_copies_hash_within_the_default_distance(kind):
    for seed in range(20):
        img = drawing(seed)
        distance = popcount64(np.uint64(phash(crop(img)) ^ phash(plant(img, kind, shift=1))))
        assert distance <= DEFAULT_MAX_DISTANCE, (seed, kind)


def test_different_drawings_hash_beyond_the_default_distance():
    hashes = np.array([phash(crop(drawing(seed))) for seed in range(60)], dtype=np.uint64)
    d = popcount64(hashes[:, None] ^ hashes[None, :])
    assert d[np.triu_indices(len(hashes), k=1)].min() > DEFAULT_MAX_DISTANCE


def sources(folder, files: dict[str, bytes]) -> list[Source]:
    """Each file stored as a member of a shard in `folder`, as the faces stage stores crops."""
    with ShardWriter(folder, "faces", 100) as writer:
        return [Source(str(folder), writer.add(name, data), name, sha256_hex(data)) for name, data in files.items()]


def png(face, level: int = 3) -> bytes:
    return cv2.imencode(".png", face, [cv2.IMWRITE_PNG_COMPRESSION, level])[1].tobytes()


def test_pixel_digest_ignores_the_file_encoding(tmp_path):
    face = crop(drawing(1))
    a, b = hash_files(sources(tmp_path, {f"level{level}.png": png(face, level) for level in (0, 9)}))
    assert a.file_sha256 != b.file_sha256
    assert a.pixel_sha256 == b.pixel_sha256 and a.phash == b.phash
    assert pixel_digest(face) != pixel_digest(face[::-1])


def test_unusable_files_come_back_as_failures_with_a_reason(tmp_path):
    data = png(crop(drawing(2)))
    good, empty, truncated, text = sources(tmp_path, {"good.png": data, "empty.png": b"", "truncated.png": data[: len(data) // 2], "text.png": b"<html>not an image</html>"})
    missing = Source(str(tmp_path), Member("faces-000099.tar", 512, 10), "missing.png", "0" * 64)
    results = hash_files([good, missing, empty, truncated, text])
    assert isinstance(results[0], FaceHash)
    reasons = [r.reason if isinstance(r, HashFailure) else None for r in results]
    assert reasons == [None, "missing_file", "empty_file", "truncated", "not_an_image"]


def test_a_hash_is_recorded_under_its_files_content_id(tmp_path):
    (source,) = sources(tmp_path / "a", {"face.png": png(crop(drawing(3)))})
    (first,) = hash_files([source])
    assert first.file_sha256 == source.content_id


def union_find_reference(n, edges):
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    roots = [find(i) for i in range(n)]
    smallest = {}
    for i, r in enumerate(roots):
        smallest.setdefault(r, i)
    return [smallest[r] for r in roots]


def test_components_match_union_find_even_when_folded_in_pieces(monkeypatch):
    rng = np.random.default_rng(0)
    n = 200
    chunks = [rng.integers(0, n, size=(int(rng.integers(0, 6)), 2)) for _ in range(40)]
    expected = union_find_reference(n, [tuple(e) for c in chunks for e in c])
    assert components(n, chunks).tolist() == expected
    monkeypatch.setattr(groups, "_FOLD_EVERY", 3)  # fold the pending edges into labels many times
    assert components(n, chunks).tolist() == expected


def test_same_key_edges_join_equal_keys_only():
    labels = components(5, [same_key_edges(["a", "b", "a", "c", "b"])])
    assert labels.tolist() == [0, 1, 0, 3, 1]


def test_batches_go_to_the_pool_a_few_at_a_time_and_come_back_in_order(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from preprocess.dedupe import hashing

    monkeypatch.setattr(hashing, "IN_FLIGHT", 3)
    taken, queued = [], []

    def tasks():
        for k in range(20):
            queued.append(k - len(taken))  # tasks handed out and not yet returned when task k is made
            yield k, (k,)

    with ThreadPoolExecutor(2) as pool:
        for tag, result in hashing.bounded_map(pool, lambda x: x * x, tasks()):
            assert result == tag * tag
            taken.append(tag)
    assert taken == list(range(20)) and max(queued) <= 3
