"""Atomic file writes and JSON Lines manifests: a stage never leaves a half-written file."""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from anigan.errors import UserError

# mkstemp creates files readable by the owner only; finished files get the usual permissions.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[io.BufferedWriter]:
    """A binary file to write `path`'s new content into: a temporary beside it, fsynced and renamed
    over `path` when the block ends without an error (removed when it fails).

    The rename gives `path` a new inode, so a file DVC's cache shares by a link is never changed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, then rename it over `path`."""
    with atomic_writer(path) as f:
        f.write(data)


def unshare(path: str | os.PathLike) -> None:
    """Give `path` its own inode before changing it in place, when it is a symlink or a hard link.

    With DVC's link cache types (`.dvc/config`), a pipeline output may be the cache's own file;
    appending to it would change the cached copy of every version that shares it.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not (path.is_symlink() or st.st_nlink > 1):
        return
    with atomic_writer(path) as out, open(path, "rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)


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


def jsonl_bytes(record: dict) -> bytes:
    """One manifest line as written (for writers that stream several files at once)."""
    return _jsonl_line(record).encode("utf-8")


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    """Replace a manifest atomically with `records` (streamed: any iterable); returns how many were written."""
    count = 0
    with atomic_writer(path) as f:
        for record in records:
            f.write(_jsonl_line(record).encode("utf-8"))
            count += 1
    return count


def append_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    """Append whole lines to a manifest and fsync, so a killed process leaves at most a torn last line.

    `read_jsonl` skips a torn last line, and the next append cuts it off before writing, so an
    append-only manifest survives any number of kills.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(_jsonl_line(r) for r in records).encode("utf-8")
    if not data:
        return 0
    unshare(path)
    with open(path, "ab") as f:
        # Appenders in other threads (the crawl's pipeline) or processes wait here: the torn-tail
        # check must not mistake another writer's line in progress for a killed writer's.
        fcntl.flock(f, fcntl.LOCK_EX)
        _drop_torn_tail(f)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return data.count(b"\n")


def _drop_torn_tail(f: io.BufferedWriter) -> None:
    """Truncate a file open for appending back to just after its last newline (a killed writer's half line).

    The caller holds an exclusive lock on the file, so no other appender's line is in progress.
    """
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return
    with open(f.name, "rb") as reader:
        reader.seek(size - 1)
        if reader.read(1) == b"\n":
            return  # the last line is whole: the usual case, one byte read
        end = size
        while end > 0:
            start = max(0, end - 65536)
            reader.seek(start)
            chunk = reader.read(end - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                f.truncate(start + newline + 1)
                return
            end = start
    f.truncate(0)  # not one whole line: nothing in the file was ever complete


def read_jsonl_offsets(path: str | os.PathLike, missing_ok: bool = False) -> Iterator[tuple[int, dict]]:
    """(byte offset of the line, record) for each record, so a reader can keep offsets, not records."""
    path = Path(path)
    if missing_ok and not path.exists():
        return
    with open(path, "rb") as f:
        offset = 0
        for number, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                break  # a killed writer's torn line
            if line.strip():
                yield offset, _record(path, number, line.decode("utf-8", errors="replace"))
            offset += len(line)


def read_jsonl_at(f: io.BufferedReader, offset: int) -> dict:
    """The record on the line at `offset` of an open JSON Lines file (see read_jsonl_offsets)."""
    f.seek(offset)
    return _record(Path(f.name), 0, f.readline().decode("utf-8", errors="replace"))


def read_jsonl(path: str | os.PathLike, missing_ok: bool = False) -> Iterator[dict]:
    """Yield the records of a manifest. A torn final line (from a killed writer) is skipped."""
    path = Path(path)
    if missing_ok and not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith("\n"):
                break  # a writer was killed mid-line; the record was never complete
            if line.strip():
                yield _record(path, number, line)


class DamagedManifest(UserError, ValueError):
    """A manifest line that is not a JSON object: a user-facing error, and a ValueError for readers that recover."""


def _record(path: Path, number: int, line: str) -> dict:
    """One manifest line as a dict; a damaged line raises DamagedManifest naming the file and line."""
    fix = "the file is damaged: remove the line or rerun the stage that wrote it"
    try:
        record = json.loads(line)
    except ValueError as e:
        raise DamagedManifest(f"{path}:{number}: not a JSON line ({e}); {fix}") from None
    if not isinstance(record, dict):
        raise DamagedManifest(f"{path}:{number}: a JSON {type(record).__name__}, not an object; {fix}")
    return record
