#!/usr/bin/env bash
# The GPU figures in one run, for the day a CUDA GPU is lent: prints one table.
#
#     bash bench/gpu_check.sh            # from the repository root; about 10 minutes on one GPU
#
# 1. Trainer images/s at the paper's widths (ngf = ndf = 64, 64 px, batch 64, bf16 autocast:
#    train.amp), torch.compile off and on, against the examples-style loop of bench/train_bench.py.
# 2. The copy of a synthetic 700,000-face array (64 px, about 8.6 GB on disk) from its memory map
#    to the GPU, as train does it (train.data.copy_to_device): seconds and the peak host RSS.
# 3. The CUDA-only tests (those with "cuda" in their name, skipped on machines without one).
#
# Without a CUDA GPU it says so and exits 0: nothing here means anything on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! uv run python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "gpu_check: no CUDA GPU on this machine; nothing measured."
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/anigan-gpu-check-XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. Training speed: one repeat of 50 timed steps each, compile off then on.
uv run python bench/train_bench.py --widths 64 --steps 50 --repeats 1 --json "$work/eager.json" >"$work/eager.log" 2>&1 \
    || { cat "$work/eager.log"; echo "gpu_check: train_bench (compile off) failed"; }
uv run python bench/train_bench.py --widths 64 --steps 50 --repeats 1 --compile --json "$work/compiled.json" >"$work/compiled.log" 2>&1 \
    || { cat "$work/compiled.log"; echo "gpu_check: train_bench (compile on) failed"; }

# 2. The device copy of 700,000 faces, in a child process of its own so its peak RSS is its alone.
uv run python - "$work" >"$work/copy.log" 2>&1 <<'EOF' || { cat "$work/copy.log"; echo "gpu_check: the device copy failed"; }
import json, resource, sys, time
from pathlib import Path

import numpy as np
import torch

from gan.packed import load_images
from train.data import copy_to_device

work = Path(sys.argv[1])
count, side = 700_000, 64
block = np.random.default_rng(0).integers(0, 256, (4096, side, side, 3), dtype=np.uint8)
out = np.lib.format.open_memmap(work / "train.npy", mode="w+", dtype=np.uint8, shape=(count, side, side, 3))
for start in range(0, count, len(block)):
    stop = min(start + len(block), count)
    out[start:stop] = block[: stop - start]
out.flush()
del out
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
images = load_images(work)
torch.cuda.synchronize()
started = time.perf_counter()
on_gpu = copy_to_device(images, torch.device("cuda"))
torch.cuda.synchronize()
seconds = time.perf_counter() - started
assert on_gpu.shape == images.shape and bool((on_gpu[-1].cpu().numpy() == images[-1]).all())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
(work / "copy.json").write_text(json.dumps({"seconds": seconds, "gib": images.nbytes / 2**30, "peak_rss_mib": peak / 1024, "rss_before_mib": before / 1024}))
EOF

# 3. CUDA-only tests.
tests="none collected"
if uv run pytest -q -k cuda tests/unit >"$work/tests.log" 2>&1; then
    tests=$(tail -1 "$work/tests.log")
else
    code=$?
    [ "$code" -eq 5 ] || tests="FAILED: $(tail -1 "$work/tests.log")"
fi

uv run python - "$work" "$tests" <<'EOF'
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
for label, result in (("compile off", eager), ("compile on", compiled)):
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
    print(f"| device copy of 700,000 faces of 64 px ({copy['gib']:.1f} GiB) | {copy['seconds']:.1f} s, peak host RSS {copy['peak_rss_mib']:.0f} MiB |")
print(f"| CUDA-only tests (pytest -k cuda tests/unit) | {tests} |")
EOF
