#!/usr/bin/env bash
# The GPU figures in one run, for the day a CUDA GPU is lent: prints one table.
#
#     bash bench/gpu_check.sh            # from the repository root; about 10 minutes on one GPU
#
# 1. Trainer images/s at the paper's widths (ngf = ndf = 64, 64 px, batch 64, bf16 autocast:
#    train.amp), torch.compile off and on, against the examples-style loop of bench/train_bench.py.
# 2. The copy of a synthetic 700,000-face array (64 px, about 8.6 GB on disk) from its memory map
#    to the GPU, as train does it (train.data.copy_to_device): seconds and the peak host RSS.
# 3. The CUDA-only tests (those with "cuda" in their name, skipped on machines without one), from
#    the test files that mention CUDA (so a machine without the crawler's packages can collect them).
# 4. When the demo split exists (`uv run dvc repro split` first): `anigan train` with the default
#    params on the GPU, compile off and on, then `anigan evaluate` of the first on the GPU: their
#    wall times and figures.
#
# ANIGAN_PYTHON names the Python to run with (default `uv run python`; on a machine whose python
# already holds the dependencies, ANIGAN_PYTHON=python3). GPU_CHECK_OUT, if set, is a folder that
# receives the logs, the training's progress GIF and the evaluation's metrics.json.
#
# Without a CUDA GPU it says so and exits 0: nothing here means anything on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -a PY <<<"${ANIGAN_PYTHON:-uv run python}"

if ! "${PY[@]}" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "gpu_check: no CUDA GPU on this machine; nothing measured."
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/anigan-gpu-check-XXXXXX")
trap 'rm -rf "$work"' EXIT

timed() {  # timed NAME COMMAND...: runs it, logs to $work/NAME.log, its wall nanoseconds to $work/NAME.ns; on failure shows the log
    local name=$1 started
    shift
    started=$(date +%s%N)
    if "$@" >"$work/$name.log" 2>&1; then
        echo $(($(date +%s%N) - started)) >"$work/$name.ns"
    else
        cat "$work/$name.log"
        echo "gpu_check: $name failed"
    fi
}

# 1. Training speed: one repeat of 50 timed steps each, compile off then on.
timed eager "${PY[@]}" bench/train_bench.py --widths 64 --steps 50 --repeats 1 --json "$work/eager.json"
timed compiled "${PY[@]}" bench/train_bench.py --widths 64 --steps 50 --repeats 1 --compile --json "$work/compiled.json"

# 2. The device copy of 700,000 faces. One process writes the array and another copies it, so the
#    copier's peak RSS is its own (pages written through a memory map count as resident).
timed write "${PY[@]}" - "$work" <<'EOF'
import sys
from pathlib import Path

import numpy as np

count, side = 700_000, 64
block = np.random.default_rng(0).integers(0, 256, (4096, side, side, 3), dtype=np.uint8)
out = np.lib.format.open_memmap(Path(sys.argv[1]) / "train.npy", mode="w+", dtype=np.uint8, shape=(count, side, side, 3))
for start in range(0, count, len(block)):
    stop = min(start + len(block), count)
    out[start:stop] = block[: stop - start]
out.flush()
EOF
timed copy "${PY[@]}" - "$work" <<'EOF'
import json, resource, sys, time
from pathlib import Path

import torch

from gan.packed import load_images
from train.data import copy_to_device


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


work = Path(sys.argv[1])
torch.zeros(1, device="cuda")  # the CUDA context's own host memory is counted before the copy, apart
before = rss_mib()
images = load_images(work)
torch.cuda.synchronize()
started = time.perf_counter()
on_gpu = copy_to_device(images, torch.device("cuda"))
torch.cuda.synchronize()
seconds = time.perf_counter() - started
for row in (0, 12_345, len(images) - 1):
    assert bool((on_gpu[row].cpu().numpy() == images[row]).all()), row
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
(work / "copy.json").write_text(json.dumps({"seconds": seconds, "gib": images.nbytes / 2**30, "peak_rss_mib": peak, "rss_before_mib": before}))
EOF

# 3. CUDA-only tests.
tests="none collected"
mapfile -t cuda_files < <(grep -l "cuda" tests/unit/test_*.py tests/stages/test_*.py)
if "${PY[@]}" -m pytest -q -k cuda "${cuda_files[@]}" >"$work/tests.log" 2>&1; then
    tests=$(tail -1 "$work/tests.log")
else
    code=$?
    [ "$code" -eq 5 ] || tests="FAILED: $(tail -1 "$work/tests.log")"
fi

# 4. The pipeline's own training and evaluation on the GPU, on the demo split if there is one.
if [ -f data/dataset/train.npy ]; then
    timed train "${PY[@]}" -m anigan train --device cuda --run-dir "$work/run" --fresh
    timed train_compiled "${PY[@]}" -m anigan -S train.compile=true train --device cuda --run-dir "$work/run-compiled" --fresh
    [ -f "$work/train.ns" ] && timed evaluate "${PY[@]}" -m anigan evaluate --device cuda --checkpoint "$work/run"
fi
if [ -n "${GPU_CHECK_OUT:-}" ]; then
    mkdir -p "$GPU_CHECK_OUT"
    cp "$work"/*.log "$work"/*.json "$GPU_CHECK_OUT"/ 2>/dev/null || true
    cp "$work/run/progress.gif" runs/evaluate/metrics.json "$GPU_CHECK_OUT"/ 2>/dev/null || true
fi

"${PY[@]}" - "$work" "$tests" <<'EOF'
import json, sys
from pathlib import Path

work, tests = Path(sys.argv[1]), sys.argv[2]


def read(name):
    path = work / name
    return json.loads(path.read_text()) if path.is_file() else None


eager, compiled, copy = read("eager.json"), read("compiled.json"), read("copy.json")
device = (eager or compiled or {}).get("device", "CUDA GPU")
print(f"device: {device}")
print("| what | figure |")
print("| --- | --- |")
FELL_BACK = "goes on without torch.compile"  # train.loop's warning when the compiled models fail


def fell_back(name):
    path = work / f"{name}.log"
    return path.is_file() and FELL_BACK in path.read_text()


for label, result in (("compile off", eager), ("compile on", compiled)):
    if result is not None and label == "compile on" and fell_back("compiled"):
        label = "compile on, failed at the first step: trained without it"
    if result is None:
        print(f"| trainer, ngf = ndf = 64, bf16, {label} | failed (see above) |")
        continue
    row = result["rows"][0]
    print(f"| examples-style loop (bench/train_bench.py), ngf = ndf = 64 ({label} run) | {row['reference']:.0f} images/s |")
    print(f"| trainer, same work, ngf = ndf = 64, bf16, {label} | {row['anigan_same_work']:.0f} images/s ({row['anigan_same_work'] / row['reference']:.2f}x) |")
    print(f"| trainer as `anigan train` runs (+ DiffAugment, EMA), {label} | {row['anigan_default']:.0f} images/s ({row['anigan_default'] / row['reference']:.2f}x) |")
if copy is None:
    print("| device copy of 700,000 faces of 64 px | failed (see above) |")
else:
    print(f"| device copy of 700,000 faces of 64 px ({copy['gib']:.1f} GiB) | {copy['seconds']:.1f} s ({copy['gib'] / copy['seconds']:.1f} GiB/s), peak host RSS {copy['peak_rss_mib']:.0f} MiB ({copy['rss_before_mib']:.0f} MiB with torch and the CUDA context before the copy) |")
print(f"| CUDA-only tests (pytest -k cuda, test files that mention CUDA) | {tests} |")


def seconds(name):
    path = work / f"{name}.ns"
    return int(path.read_text()) / 1e9 if path.is_file() else None


def log_lines(name):
    path = work / f"{name}.log"
    return [line.strip() for line in path.read_text().splitlines()] if path.is_file() else []


if (work / "train.log").is_file():
    for name, label in (("train", "compile off"), ("train_compiled", "compile on")):
        if fell_back(name):
            label += ", failed at the first step: trained without it"
        wall = seconds(name)
        speed = next((line for line in log_lines(name) if line.startswith("trained to iteration")), "")
        print(f"| `anigan train`, default params, demo split, {label} | {f'{wall:.0f} s wall' if wall else 'failed'}; {speed} |")
    eval_s = seconds("evaluate")
    if eval_s:
        figures = dict(line.split()[:2] for line in log_lines("evaluate") if len(line.split()) == 2)
        scores = ", ".join(f"{key} {figures[key]}" for key in ("face_rate", "msssim", "memorized_share") if key in figures)
        print(f"| `anigan evaluate` of that run | {eval_s:.0f} s wall; {scores} |")
else:
    print("| `anigan train` / `evaluate` on the demo split | not run: no data/dataset/train.npy (`uv run dvc repro split` first) |")
EOF
