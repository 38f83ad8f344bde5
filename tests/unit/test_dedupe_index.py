"""The Hamming-distance index finds exactly the pairs a brute-force comparison finds, each once."""

import numpy as np
import pytest

from preprocess.dedupe.hamming_index import Plan, bands_for, iter_distinct_pairs, near_pairs, plan_bands, popcount64


def brute_force(hashes: np.ndarray, max_distance: int) -> np.ndarray:
    d = popcount64(hashes[:, None] ^ hashes[None, :])
    i, j = np.nonzero(np.triu(d <= max_distance, k=1))
    return np.stack([i, j], axis=1)


def clustered_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random hashes where many lie a few bits from another (and some repeat): pairs at every distance."""
    if n == 0:
        return np.empty(0, np.uint64)
    centres = rng.integers(0, 2**64, size=max(1, n // 3), dtype=np.uint64, endpoint=False)
    h = centres[rng.integers(0, len(centres), size=n)]
    for _ in range(rng.integers(0, 6)):
        flip = rng.random(n) < 0.6
        h[flip] ^= np.uint64(1) << rng.integers(0, 64, size=int(flip.sum())).astype(np.uint64)
    return h


def sorted_pairs(chunks) -> np.ndarray:
    pairs = np.concatenate(list(chunks) or [np.empty((0, 2), np.int64)])
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def test_popcount_counts_set_bits():
    values = np.array([0, 1, 2**63, 2**64 - 1, 0xF0F0], dtype=np.uint64)
    assert popcount64(values).tolist() == [bin(int(v)).count("1") for v in values]


@pytest.mark.parametrize("seed", range(12))
def test_near_pairs_equal_brute_force_on_random_hashes(seed):
    rng = np.random.default_rng(seed)
    hashes = clustered_hashes(rng, int(rng.integers(0, 300)))
    max_distance = int(rng.integers(0, 13))
    assert np.array_equal(near_pairs(hashes, max_distance), brute_force(hashes, max_distance))


@pytest.mark.parametrize("max_distance", [0, 1, 3, 6, 10])
def test_every_band_plan_finds_every_pair_exactly_once(max_distance):
    rng = np.random.default_rng(max_distance)
    distinct = np.unique(clustered_hashes(rng, 400))
    expected = brute_force(distinct, max_distance)
    for m in range(2, max_distance + 2):
        if sum(b.flips() for b in bands_for(m, max_distance)) > 5000:
            continue  # wide bands at a large radius: correct but slow, and never planned for so few hashes
        found = sorted_pairs(iter_distinct_pairs(distinct, max_distance, plan=Plan(bands_for(m, max_distance), 0.0)))
        assert np.array_equal(found, expected), f"{m} bands"  # no pair missed, none reported twice


def test_band_radii_leave_no_pair_unseen():
    # pigeonhole: hashes within r bits agree within radius in some band iff the radii + 1 sum to r + 1
    for r in range(0, 21):
        for m in range(1, r + 2):
            bands = bands_for(m, r)
            assert sum(b.width for b in bands) == 64
            assert sum(b.radius + 1 for b in bands) == r + 1


def test_tiny_chunks_and_a_giant_bucket_give_the_same_pairs():
    rng = np.random.default_rng(5)
    # 300 hashes that all share their top 40 bits: every band over those bits is one giant bucket
    hashes = (np.uint64(0xABCDEF1234) << np.uint64(24)) | rng.integers(0, 2**24, size=300, dtype=np.uint64)
    hashes = np.unique(hashes)
    plan = Plan(bands_for(7, 6), 0.0)
    found = sorted_pairs(iter_distinct_pairs(hashes, 6, plan=plan, chunk=7))
    assert np.array_equal(found, brute_force(hashes, 6))


def test_repeated_hashes_pair_with_each_other_and_with_their_neighbours():
    hashes = np.array([5, 5, 5, 4, 2**40], dtype=np.uint64)  # 4 is one bit from 5
    assert near_pairs(hashes, 1).tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert near_pairs(hashes, 0).tolist() == [[0, 1], [0, 2], [1, 2]]


def test_plan_uses_brute_force_for_a_handful_and_bands_for_many():
    assert plan_bands(20, 6).brute_force
    big = plan_bands(1_000_000, 6)
    assert not big.brute_force
    assert big.estimated_cost < 1_000_000**2 / 2  # far fewer comparisons than all pairs


def test_bands_searched_in_worker_processes_give_the_same_pairs(monkeypatch):
    from preprocess.dedupe import hamming_index

    monkeypatch.setattr(hamming_index, "PARALLEL_FROM", 0)  # use the pool even for a small input
    rng = np.random.default_rng(11)
    hashes = clustered_hashes(rng, 3000)
    assert np.array_equal(near_pairs(hashes, 8, workers=2), near_pairs(hashes, 8, workers=1))


@pytest.mark.parametrize("step", [1, 16, 4096, 1 << 20])  # one-byte, two-byte and plain bucket tables
def test_bucket_tables_and_query_blocks_of_any_size_find_the_same_pairs(monkeypatch, step):
    from preprocess.dedupe import hamming_index

    rng = np.random.default_rng(step)
    distinct = np.unique(clustered_hashes(rng, 3000))
    expected = brute_force(distinct, 4)
    monkeypatch.setattr(hamming_index._BucketTable, "STEP", step)
    monkeypatch.setattr(hamming_index, "QUERY_BLOCK", 37)
    plan = Plan(bands_for(3, 4), 0.0)
    assert np.array_equal(sorted_pairs(iter_distinct_pairs(distinct, 4, plan=plan)), expected)
