"""Atomic file writes and JSON Lines manifests: a stage never leaves a half-written file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Text version of atomic_write_bytes (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write one JSON document atomically, pretty-printed with sorted keys (stable diffs for DVC)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _jsonl_line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    """Replace a manifest atomically with `records`; returns how many were written."""
    lines = [_jsonl_line(r) for r in records]
    atomic_write_text(path, "".join(lines))
    return len(lines)


def append_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    """Append whole lines to a manifest and fsync, so a killed process leaves at most a torn last line.

    `read_jsonl` skips a torn last line, so an append-only manifest survives a kill.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(_jsonl_line(r) for r in records)
    if not data:
        return 0
    with open(path, "a", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return data.count("\n")


def read_jsonl(path: str | os.PathLike, missing_ok: bool = False) -> Iterator[dict]:
    """Yield the records of a manifest. A torn final line (from a killed writer) is skipped."""
    path = Path(path)
    if missing_ok and not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # a writer was killed mid-line; the record was never complete
            if line.strip():
                yield json.loads(line)
