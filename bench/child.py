"""What one command run as a benchmark's child cost: its peak resident set, wall time and CPU seconds.

The peak is the child's `os.wait4` ru_maxrss: its own (and that of the processes it waited for),
not the largest of all of this process's children, which RUSAGE_CHILDREN would give. A child's
ru_maxrss also counts the memory of the process it was forked from, so a benchmark that builds
large inputs builds them in a process of its own before measuring.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def measure_child(command: list[str], cwd: Path | None = None, quiet: bool = False) -> dict:
    """Run `command` to its end (its output hidden when `quiet`); exit naming it when it fails."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL if quiet else None)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if code := os.waitstatus_to_exitcode(status):
        sys.exit(f"{' '.join(command[-2:])} failed with {code}")
    return {"peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1)}
