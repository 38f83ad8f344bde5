"""Parts of a raw folder: what one crawl process writes when several crawl into the same folder.

    parts/<part-id>/shards/raw-NNNNNN.tar   the process's images (anigan.shards, as in any raw folder)
    parts/<part-id>/manifest.jsonl          its kept posts, naming places in its own shards
    parts/<part-id>/rejects.jsonl           its refused posts
    parts/<part-id>/crawl_state.json        the query it crawled

A part is laid out as a raw folder, so a raw folder filled on another machine becomes a part by
copying it to `parts/<any-name>/`. Worker parts are named `<host>-<pid>-<random>`: no two
processes, on one machine or many, pick the same name, so they never share a file.

While a process writes its part it holds a lock on the part's folder (crawler.locks); a part
nobody holds is finished, or its writer died. `RawFolder.prepare` merges finished parts: their
shards move into the folder's `shards/` as `raw-<part-id>-NNNNNN.tar` (a move, not a copy; a name
derived from the part, so a merge killed half way resumes with the same names), then their lines
join manifest.jsonl and rejects.jsonl, then the part is removed.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from anigan.errors import UserError
from anigan.files import read_json, read_jsonl
from crawler.locks import FolderLock, held

PARTS = "parts"
PREFIX = "raw"
_PART_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Any shard of a raw folder: `raw-NNNNNN.tar` (a single process's) or `raw-<part-id>-NNNNNN.tar`
# (merged from a part); the prefix is everything before the last `-NNNNNN`.
_ANY_SHARD = re.compile(rf"^({PREFIX}(?:-.+)?)-(\d+)\.tar$")


def new_part_id() -> str:
    """A name no other crawl process picks: this host, this process, 8 random hex digits."""
    host = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"


def merged_shard_name(part_id: str, name: str) -> str:
    """A part's shard's name once merged: its prefix gains the part id (`raw-000003.tar` -> `raw-<id>-000003.tar`)."""
    return f"{PREFIX}-{part_id}-{name.removeprefix(PREFIX + '-')}"


def shard_prefixes(shards: Path) -> list[str]:
    """The shard prefixes present in a `shards/` folder: `raw` and one per merged part."""
    if not shards.is_dir():
        return [PREFIX]
    found = {m.group(1) for p in shards.iterdir() if (m := _ANY_SHARD.match(p.name))}
    return sorted(found | {PREFIX})


def shard_files(shards: Path) -> Iterator[Path]:
    """Every shard of every prefix in a `shards/` folder."""
    if shards.is_dir():
        yield from (p for p in shards.iterdir() if _ANY_SHARD.match(p.name))


# A raw folder's file names; a part is laid out the same way (crawler.rawfolder uses these too).
SHARDS = "shards"
MANIFEST = "manifest.jsonl"
REJECTS = "rejects.jsonl"
STATE = "crawl_state.json"


@dataclass(frozen=True)
class Part:
    """One part folder under `parts/`."""

    root: Path

    @property
    def id(self) -> str:
        return self.root.name

    @property
    def shards(self) -> Path:
        return self.root / SHARDS

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def rejects(self) -> Path:
        return self.root / REJECTS

    @property
    def state(self) -> Path:
        return self.root / STATE

    def query(self) -> dict | None:
        """The query the part was filled with, when it says."""
        try:
            state = read_json(self.state)
        except (FileNotFoundError, ValueError):
            return None
        return state.get("query") if isinstance(state, dict) else None

    def records(self, which: Path) -> Iterator[dict]:
        """The part's manifest or rejects lines; places name the shards as merged."""
        for record in read_jsonl(which, missing_ok=True):
            if isinstance(record.get("shard"), str):
                record["shard"] = merged_shard_name(self.id, record["shard"])
            yield record

    def move_shards(self, into: Path) -> int:
        """Move the part's shards into the folder's `shards/` under their merged names; returns how many moved.

        A link then an unlink, never a rename: a name already taken is an error, not an overwrite.
        """
        if not self.shards.is_dir():
            return 0
        into.mkdir(parents=True, exist_ok=True)
        moved = 0
        for path in sorted(shard_files(self.shards)):
            target = into / merged_shard_name(self.id, path.name)
            if target.exists() and not os.path.samefile(path, target):
                raise UserError(f"{path}: cannot merge the part: {target} exists and holds other bytes; rename the part folder")
            if not target.exists():
                os.link(path, target)
            path.unlink()
            moved += 1
        return moved

    def remove(self) -> None:
        shutil.rmtree(self.root)


def part_folders(root: Path) -> list[Part]:
    """Every part of a raw folder, in name order; a part folder whose name cannot name shards is an error."""
    folder = root / PARTS
    if not folder.is_dir():
        return []
    parts = []
    for path in sorted(folder.iterdir()):
        if not path.is_dir():
            continue
        if not _PART_NAME.match(path.name):
            raise UserError(f"{path}: a part folder's name may hold only letters, digits, '.', '_' and '-'; rename it")
        parts.append(Part(path))
    return parts


def finished_parts(root: Path) -> list[Part]:
    """Parts no process is writing: ready to merge."""
    return [p for p in part_folders(root) if not held(p.root)]


def live_parts(root: Path) -> list[Part]:
    """Parts a crawl process is writing now."""
    return [p for p in part_folders(root) if held(p.root)]


def open_part(root: Path) -> tuple[Part, FolderLock]:
    """A new part for this process, locked (call under the folder's lock, so no merge sees it unlocked)."""
    part = Part(root / PARTS / new_part_id())
    part.root.mkdir(parents=True)
    lock = FolderLock.try_take(part.root)
    assert lock is not None, "a new part folder is locked by nobody"
    return part, lock
