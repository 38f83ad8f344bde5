"""Near-duplicate search: anigan's multi-index Hamming search against imagededup's fastest search.

    uv run python bench/dedupe_bench.py [--n 20000] [--big 1000000] [--max-distance N]

1. The same n random 64-bit hashes, with planted near pairs (copies with 1..max_distance bits
   flipped), go to imagededup's `brute_force_cython` search (via `HashEval`, all cores, as
   `PHash.find_duplicates` runs it) and to `preprocess.dedupe.hamming_index.near_pairs`, at the same
   threshold. Both must find exactly the same pairs (asserted); the time ratio is printed.
2. Time and peak memory of `near_pairs` on `--big` hashes, in a fresh process so the peak
   resident memory is the search's own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anigan.params import load_params  # noqa: E402
from preprocess.dedupe.hamming_index import near_pairs, plan_bands  # noqa: E402


def planted_hashes(n: int, max_distance: int, seed: int = 0, share: float = 0.02) -> np.ndarray:
    """n random hashes; `share` of them are replaced by copies of another with 1..max_distance bits flipped."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64, endpoint=False)
    copies = rng.choice(n, size=int(n * share), replace=False)
    for i in copies:
        h = hashes[int(rng.integers(0, n))]
        for bit in rng.choice(64, size=int(rng.integers(1, max_distance + 1)), replace=False):
            h ^= np.uint64(1) << np.uint64(bit)
        hashes[i] = h
    return hashes


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (pool workers): independent of other jobs on the machine."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def imagededup_pairs(hashes: np.ndarray, max_distance: int) -> tuple[set[tuple[int, int]], float, float]:
    from imagededup.handlers.search.retrieval import HashEval
    from imagededup.methods.hashing import Hashing

    encodings = {str(i): f"{int(h):016x}" for i, h in enumerate(hashes)}
    cpu, start = cpu_seconds(), time.perf_counter()
    result = HashEval(
        test=encodings,
        queries=encodings,
        distance_function=Hashing.hamming_distance,
        verbose=False,
        threshold=max_distance,
        search_method="brute_force_cython",
        num_dist_workers=os.cpu_count() or 1,
    ).retrieve_results(scores=False)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    pairs = {(min(int(a), int(b)), max(int(a), int(b))) for a, dups in result.items() for b in dups}
    return pairs, seconds, cpu


def ours(hashes: np.ndarray, max_distance: int, workers: int) -> tuple[set[tuple[int, int]], float, float]:
    cpu, start = cpu_seconds(), time.perf_counter()
    pairs = near_pairs(hashes, max_distance, workers=workers)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return {(int(a), int(b)) for a, b in pairs}, seconds, cpu


def peak_rss_mib() -> float:
    """Peak resident memory of this process image (VmHWM; ru_maxrss would include the parent's before exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def big_run(n: int, max_distance: int, workers: int) -> dict:
    """Runs in a child process: generate, then search; report time and peak resident memory (this process's)."""
    hashes = planted_hashes(n, max_distance, seed=1)
    before = peak_rss_mib()
    cpu, start = cpu_seconds(), time.perf_counter()
    pairs = near_pairs(hashes, max_distance, workers=workers)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    peak = peak_rss_mib()
    plan = plan_bands(len(np.unique(hashes)), max_distance)
    return {
        "n": n,
        "pairs": int(len(pairs)),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mib": peak,
        "rss_before_search_mib": before,
        "bands": [[b.width, b.radius] for b in plan.bands],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="hashes in the comparison with imagededup")
    parser.add_argument("--big", type=int, default=1_000_000, help="hashes in the time/memory run (0: skip)")
    parser.add_argument("--max-distance", type=int, default=None, help="threshold (default: dedupe.max_distance of params.yaml)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for our search (imagededup uses all cores)")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    r = args.max_distance if args.max_distance is not None else load_params(None).dedupe.max_distance
    if args.child:
        print(json.dumps(big_run(args.child, r, args.workers)))
        return

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}")
    hashes = planted_hashes(args.n, r)
    theirs, t_theirs, cpu_theirs = imagededup_pairs(hashes, r)
    mine, t_mine, cpu_mine = ours(hashes, r, args.workers)
    assert mine == theirs, f"pairs differ: {len(mine - theirs)} only ours, {len(theirs - mine)} only imagededup"
    print(f"{args.n} hashes, max_distance {r}: {len(mine)} pairs, the same in both")
    print(f"  imagededup brute_force_cython: {t_theirs:.2f} s wall, {cpu_theirs:.2f} s CPU")
    print(f"  anigan near_pairs:             {t_mine:.3f} s wall, {cpu_mine:.3f} s CPU")
    print(f"  ratio: {t_theirs / t_mine:.0f}x less wall time, {cpu_theirs / cpu_mine:.0f}x less CPU time")

    if args.big:
        for workers in sorted({1, args.workers}):
            cmd = [sys.executable, __file__, "--child", str(args.big), "--max-distance", str(r), "--workers", str(workers)]
            big = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            print(
                f"{big['n']} hashes, max_distance {r}, {workers} process(es): {big['pairs']} pairs in {big['seconds']:.1f} s ({big['cpu_seconds']:.1f} s CPU), "
                f"peak RSS {big['peak_rss_mib']:.0f} MiB ({big['rss_before_search_mib']:.0f} MiB before the search; "
                f"worker processes not counted); bands (width, radius) {big['bands']}"
            )


if __name__ == "__main__":
    main()
