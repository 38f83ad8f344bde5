"""Evaluate at scale: `anigan evaluate` on a synthetic split of N training faces, its wall time and peak RSS.

    uv run python bench/evaluate_scale.py --train 700000 --test 70000 [--size 64] [--workdir DIR] [--keep]

The split is synthetic: a block of random uint8 faces tiled to N rows of `train.npy` and
`test.npy` (written in chunks; N=700,000 at 64 px is about 8.6 GB, so the work folder needs that
much free disk). Pixel values do not change the cost of any metric, only the count and the size
do. The checkpoint is a tiny DCGAN trained for a few steps at the default widths on 64 random
faces of the same size: evaluate's cost is in the data, not in the weights.

`anigan evaluate` then runs as a child process with the default params (all metrics; FID/KID
only when the Inception weights file is present, and this script says which). The figures are
the child's wall time and its peak resident set (`os.wait4`'s ru_maxrss), which counts the pages
of the memory-mapped split it has touched and not yet let go of. The counts it sampled come from its
metrics.json. Results go to bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from child import measure_child  # bench/child.py: run as a script, this folder is on the path

BLOCK = 4096  # distinct random faces, tiled to fill the split


def write_split(path: Path, count: int, size: int, seed: int) -> None:
    """A uint8 (count, size, size, 3) .npy of tiled random faces, written a block at a time."""
    if path.is_file():
        existing = np.load(path, mmap_mode="r")
        if existing.shape == (count, size, size, 3):
            return
    block = np.random.default_rng(seed).integers(0, 256, (min(BLOCK, count), size, size, 3), dtype=np.uint8)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, size, size, 3))
    for start in range(0, count, len(block)):
        stop = min(start + len(block), count)
        out[start:stop] = block[: stop - start]
    out.flush()
    del out


def anigan(*args: str) -> list[str]:
    return [sys.executable, "-m", "anigan", *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=700_000, help="training faces")
    parser.add_argument("--test", type=int, default=70_000, help="test faces")
    parser.add_argument("--size", type=int, default=64, choices=(32, 64, 128))
    parser.add_argument("--workdir", type=Path, default=None, help="where the split and runs go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="anigan-evaluate-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(work).free
    needed = (args.train + args.test) * args.size * args.size * 3
    if free < needed * 1.05 and not (work / "big" / "train.npy").is_file():
        sys.exit(f"{work}: {free / 2**30:.1f} GiB free, the split needs {needed / 2**30:.1f} GiB; pick a smaller --train")
    try:
        small, big = work / "small", work / "big"
        small.mkdir(exist_ok=True)
        big.mkdir(exist_ok=True)
        started = time.perf_counter()
        write_split(big / "train.npy", args.train, args.size, seed=0)
        write_split(big / "test.npy", args.test, args.size, seed=1)
        print(f"split written in {time.perf_counter() - started:.0f} s: {args.train} train, {args.test} test, {args.size} px")

        write_split(small / "train.npy", 64, args.size, seed=2)
        run = work / "run"
        if not (run / "checkpoints" / "latest.pt").is_file():
            subprocess.run(
                anigan("-S", f"paths.dataset={small}", "-S", f"paths.train_run={run}", "-S", "iterations=2",
                       "-S", "train.device=cpu", "-S", "train.checkpoint_every=2", "-S", "train.sample_every=2", "train"),
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip

        out = work / "evaluate"
        cost = measure_child(anigan("-v", "-S", f"paths.dataset={big}", "-S", f"paths.train_run={run}", "-S", f"paths.evaluate_run={out}", "evaluate"))
        metrics = json.loads((out / "metrics.json").read_text())
        result = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
            "train": args.train,
            "test": args.test,
            "size": args.size,
            "wall_s": cost["wall_s"],
            "peak_rss_mib": round(cost["peak_rss_mib"]),
            "fid_kid": "fid" in metrics,
            "sampled": {k: metrics.get(k) for k in ("nn_train_references", "nn_test_images", "d_gap_train_images", "d_gap_test_images")},
        }
        print(json.dumps(result, indent=1))
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
