"""Faces stage throughput: images per second with 1 worker and with all cores, for both detectors.

    uv run python bench/faces_bench.py [--posts 120] [--seed 0] [--repeat 2] [--cascade PATH]

The same raw folder (demo booru posts written in the crawl layout) goes through `run_faces` into a
fresh output folder for each run, so every run detects, crops and saves every image. Timing is the
whole stage call, start-up included (the self-check, the process pool's start, writing the
manifest and contact sheet), as a user sees it. The speed-up is the all-cores rate over the
1-worker rate on the same images, in the same process, best of `--repeat` runs each, the two
kinds of run interleaved so that both see the same background load. CPU milliseconds per image
(this process and its workers) show what parallel work costs on top, whatever the machine's load.

The demo drawings are what animeface is tuned for; the cascade finds only some of them but scans
every image at every scale all the same, so its rate is a fair measure of its cost.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anigan.params import load_params  # noqa: E402
from preprocess.faces.stage import resolve_workers, run_faces  # noqa: E402
from tests.conftest import write_demo_raw_folder  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CASCADE = REPO.parent / "shared" / "models" / "lbpcascade_animeface.xml"


def cpu_seconds() -> float:
    """User+system CPU time of this process and its finished children (the pool's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def one_run(raw: Path, out: Path, detector: str, cascade: Path | None, workers: int) -> tuple[float, float, int, int]:
    """images/s and CPU ms per image of one fresh run into `out` (removed after); image and face counts."""
    overrides = {"paths.raw": str(raw), "paths.faces": str(out), "faces.detector": detector, "faces.workers": workers}
    if cascade is not None:
        overrides["faces.cascade_path"] = str(cascade)
    params = load_params(None, overrides)
    cpu, start = cpu_seconds(), time.perf_counter()
    summary = run_faces(params)
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    assert summary.processed == summary.images, "a bench run must process every image"
    shutil.rmtree(out)
    return summary.images / elapsed, 1000 * cpu / summary.images, summary.images, summary.faces


def compare(raw: Path, work: Path, detector: str, cascade: Path | None, cores: int, repeat: int) -> dict:
    """Best images/s (and least CPU per image) with 1 worker and with `cores`, runs interleaved."""
    best = {"one": 0.0, "many": 0.0, "one_cpu": float("inf"), "many_cpu": float("inf")}
    for n in range(repeat):
        r1, c1, images, faces = one_run(raw, work / f"{detector}-1-{n}", detector, cascade, 1)
        rn, cn, _, _ = one_run(raw, work / f"{detector}-{cores}-{n}", detector, cascade, cores)
        best = {"one": max(best["one"], r1), "many": max(best["many"], rn), "one_cpu": min(best["one_cpu"], c1), "many_cpu": min(best["many_cpu"], cn)}
    return {**best, "images": images, "faces": faces}


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
        print(f"load average before: {os.getloadavg()[0]:.1f}")
        print(f"{'detector':<10} {'images':>6} {'faces':>5} {'1 worker img/s':>15} {f'{cores} workers img/s':>17} {'speed-up':>9} {'CPU ms/img 1 / all':>19}")
        for name, cascade in detectors:
            r = compare(raw, work, name, cascade, cores, args.repeat)
            print(
                f"{name:<10} {r['images']:>6} {r['faces']:>5} {r['one']:>15.1f} {r['many']:>17.1f} {r['many'] / r['one']:>8.2f}x"
                f" {r['one_cpu']:>9.1f} / {r['many_cpu']:<7.1f}"
            )
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
