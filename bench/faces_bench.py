"""Faces stage throughput: images per second with 1 worker and with all cores, for both detectors.

    uv run python bench/faces_bench.py [--posts 120] [--seed 0] [--repeat 2] [--cascade PATH]

The same raw folder (demo booru posts written in the crawl layout) goes through `run_faces` into a
fresh output folder for each run, so every run detects, crops and saves every image. Timing is the
whole stage call, start-up included (the self-check, the process pool's start, writing the
manifest and contact sheet), as a user sees it. The speed-up is the all-cores rate over the
1-worker rate on the same images, in the same process, best of `--repeat` runs each, the two
kinds of run interleaved so that both see the same background load.

The demo drawings are what animeface is tuned for; the cascade finds only some of them but scans
every image at every scale all the same, so its rate is a fair measure of its cost.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anigan.params import load_params  # noqa: E402
from preprocess.faces import resolve_workers, run_faces  # noqa: E402
from tests.conftest import write_demo_raw_folder  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CASCADE = REPO.parent / "shared" / "models" / "lbpcascade_animeface.xml"


def one_run(raw: Path, out: Path, detector: str, cascade: Path | None, workers: int) -> tuple[float, int, int]:
    """images/s of one fresh run into `out` (removed after), with its image and face counts."""
    overrides = {"paths.raw": str(raw), "paths.faces": str(out), "faces.detector": detector, "faces.workers": workers}
    if cascade is not None:
        overrides["faces.cascade_path"] = str(cascade)
    params = load_params(None, overrides)
    start = time.perf_counter()
    summary = run_faces(params)
    elapsed = time.perf_counter() - start
    assert summary.processed == summary.images, "a bench run must process every image"
    shutil.rmtree(out)
    return summary.images / elapsed, summary.images, summary.faces


def compare(raw: Path, work: Path, detector: str, cascade: Path | None, cores: int, repeat: int) -> tuple[float, float, int, int]:
    """Best images/s with 1 worker and with `cores`, runs interleaved so both see the same machine load."""
    one = many = 0.0
    for n in range(repeat):
        r1, images, faces = one_run(raw, work / f"{detector}-1-{n}", detector, cascade, 1)
        rn, _, _ = one_run(raw, work / f"{detector}-{cores}-{n}", detector, cascade, cores)
        one, many = max(one, r1), max(many, rn)
    return one, many, images, faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cascade", type=Path, default=DEFAULT_CASCADE)
    args = parser.parse_args()

    cores = resolve_workers(0, 10**6)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs ({cores} usable), Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        raw = write_demo_raw_folder(work / "raw", posts=args.posts, seed=args.seed)
        detectors = [("animeface", None)]
        if args.cascade.is_file():
            detectors.append(("cascade", args.cascade))
        else:
            print(f"cascade: {args.cascade} not found, skipped")
        print(f"{'detector':<10} {'images':>6} {'faces':>5} {'1 worker img/s':>15} {f'{cores} workers img/s':>17} {'speed-up':>9}")
        for name, cascade in detectors:
            one, many, images, faces = compare(raw, work, name, cascade, cores, args.repeat)
            print(f"{name:<10} {images:>6} {faces:>5} {one:>15.1f} {many:>17.1f} {many / one:>8.2f}x")


if __name__ == "__main__":
    main()
