"""How many worker processes a stage uses: one rule for every stage's `workers` param."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def resolve_workers(workers: int, jobs: int | None = None) -> int:
    """A stage's `workers` param (0: every usable core), never more than `jobs` when that is known."""
    wanted = workers or usable_cores()
    return max(1, wanted if jobs is None else min(wanted, jobs))
