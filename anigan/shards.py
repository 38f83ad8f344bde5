"""Tar shards in the WebDataset layout: many small files (source images, face crops) in a few big ones.

A shard is a plain POSIX tar (`tar -tf` lists it, `webdataset` reads it) whose members are
`<key>.<ext>`, the key a content ID (image ID, face ID). Shards of one folder are named
`<prefix>-<NNNNNN>.tar` and hold at most `shard_size` members each.

- A record in a manifest points at its member's data by `shard` (the file name), `offset` (of the
  data, after its 512-byte header) and `bytes`, so one file is read with one seek.
- Only the last shard of a prefix is ever appended to, and only while no other name shares its
  inode (DVC's hard- or symlink cache, see `.dvc/config`); a shared or full shard is finished
  and never changed: new members go to the next number. A name always means the same bytes,
  except that an open shard grows.
- A killed writer leaves the last shard with a torn member at its end; reopening the shard cuts
  it back to its last whole member (`ShardWriter` salvages). Members no record names are dropped
  by `compact`, which copies the named ones of a shard into new shards; the caller then rewrites
  its manifest and removes the old shard (`remove_unused`), in that order, so a kill anywhere
  leaves a manifest whose every location is on disk.
"""

from __future__ import annotations

import logging
import os
import re
import tarfile
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

log = logging.getLogger(__name__)

BLOCK = 512
END = b"\0" * (2 * BLOCK)  # tar's end-of-archive marker
FIELDS = ("shard", "offset", "bytes")


def padded(size: int) -> int:
    """Bytes a member of `size` data bytes takes in a tar: its header and its data padded to a block."""
    return BLOCK + -(-size // BLOCK) * BLOCK


@dataclass(frozen=True, slots=True)
class Member:
    """Where one stored file's bytes are: shard file name, byte offset of the data, length."""

    shard: str
    offset: int
    bytes: int

    @property
    def end(self) -> int:
        """Where the member ends in its shard, its data's padding included."""
        return self.offset - BLOCK + padded(self.bytes)

    def fields(self) -> dict:
        """The manifest fields naming this member."""
        return {"shard": self.shard, "offset": self.offset, "bytes": self.bytes}

    @classmethod
    def of(cls, record: dict) -> Member | None:
        """The member a manifest record names, or None when it names none."""
        try:
            return cls(str(record["shard"]), int(record["offset"]), int(record["bytes"]))
        except (KeyError, TypeError, ValueError):
            return None


def _header(name: str, size: int) -> bytes:
    # Fixed owner, mode and time: the same content gives the same shard bytes on any machine.
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def iter_members(path: str | os.PathLike) -> Iterator[tuple[str, Member]]:
    """(member name, location) of every whole member of a shard, in order; stops at the end
    marker or at a torn member (a killed writer's)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        offset = 0
        while offset + BLOCK <= size:
            f.seek(offset)
            block = f.read(BLOCK)
            if block == b"\0" * BLOCK:
                return
            try:
                info = tarfile.TarInfo.frombuf(block, tarfile.ENCODING, "surrogateescape")
            except tarfile.HeaderError:
                return
            member = Member(path.name, offset + BLOCK, info.size)
            if member.end > size:
                return  # cut short: a killed writer's last member
            yield info.name, member
            offset = member.end


def shared(path: Path) -> bool:
    """Whether another name shares this file's bytes (a link into DVC's cache)."""
    return path.is_symlink() or path.stat().st_nlink > 1


class ShardFolder:
    """The shards of one prefix in one folder."""

    def __init__(self, folder: str | os.PathLike, prefix: str) -> None:
        self.folder = Path(folder)
        self.prefix = prefix
        self._pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)\.tar$")

    def names(self) -> list[str]:
        """Shard file names, in number order."""
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p.name) for p in self.folder.iterdir() if (m := self._pattern.match(p.name))]
        return [name for _, name in sorted(found)]

    def name(self, number: int) -> str:
        return f"{self.prefix}-{number:06d}.tar"

    def number(self, name: str) -> int:
        match = self._pattern.match(name)
        if not match:
            raise ValueError(f"{name} is not a shard of {self.prefix}")
        return int(match.group(1))

    def path(self, name: str) -> Path:
        return self.folder / name


class ShardWriter:
    """Appends members to the shards of one prefix; use as a context manager.

    On opening, the last shard is salvaged (cut back to its last whole member) and appended to
    when it has room and is not shared; otherwise the next number starts. `flush()` makes every
    member written so far durable (write a record naming a member only after that); `close()`
    also ends the shard with tar's end marker, so `tar` reads it without complaint.
    """

    def __init__(self, folder: str | os.PathLike, prefix: str, shard_size: int, reopen: bool = True) -> None:
        self.shards = ShardFolder(folder, prefix)
        self.shard_size = shard_size
        self.shards.folder.mkdir(parents=True, exist_ok=True)
        self._file = None
        self._name = ""
        self._count = 0
        self._offset = 0
        names = self.shards.names()
        self._next = self.shards.number(names[-1]) + 1 if names else 0
        if names and reopen:
            self._reopen(names[-1])

    def _reopen(self, name: str) -> None:
        path = self.shards.path(name)
        if shared(path):
            return
        members = list(iter_members(path))
        end = members[-1][1].end if members else 0
        if len(members) >= self.shard_size:
            if path.stat().st_size < end + len(END):
                with open(path, "r+b") as f:  # full but not ended (killed after its last member)
                    f.truncate(end)
                    f.seek(end)
                    f.write(END)
                    os.fsync(f.fileno())
            return
        if end == 0:
            path.unlink()
            self._next -= 1
            return
        self._file = open(path, "r+b")  # noqa: SIM115 (held until close)
        if self._file.seek(0, os.SEEK_END) != end:
            log.info("%s: cut back to its last whole member (%d bytes dropped)", path, self._file.tell() - end)
            self._file.truncate(end)
        self._file.seek(end)
        self._name, self._count, self._offset = name, len(members), end

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, name: str, data: bytes) -> Member:
        """Append one member; returns where its data lies."""
        if self._file is None or self._count >= self.shard_size:
            self._start()
        header = _header(name, len(data))
        member = Member(self._name, self._offset + BLOCK, len(data))
        pad = padded(len(data)) - BLOCK - len(data)
        self._file.write(header + data + b"\0" * pad)
        self._offset = member.end
        self._count += 1
        return member

    def _start(self) -> None:
        self._finish()
        self._name = self.shards.name(self._next)
        self._next += 1
        self._file = open(self.shards.path(self._name), "xb")  # noqa: SIM115 (held until close)
        self._count = self._offset = 0

    def flush(self) -> None:
        """Make what was added durable: records naming these members may be written now."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def _finish(self) -> None:
        if self._file is not None:
            self._file.write(END)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def close(self) -> None:
        self._finish()


class ShardReader:
    """Reads members by location, keeping a few shards open; use as a context manager."""

    def __init__(self, folder: str | os.PathLike, keep_open: int = 8) -> None:
        self.folder = Path(folder)
        self.keep_open = keep_open
        self._open: dict[str, object] = {}

    def read(self, member: Member) -> bytes:
        f = self._open.pop(member.shard, None)
        if f is None:
            f = open(self.folder / member.shard, "rb")  # noqa: SIM115 (kept open for the next reads)
            if len(self._open) >= self.keep_open:
                self._open.pop(next(iter(self._open))).close()
        self._open[member.shard] = f  # most recently used last
        f.seek(member.offset)
        data = f.read(member.bytes)
        if len(data) != member.bytes:
            raise OSError(f"{self.folder / member.shard}: member at {member.offset} is cut short")
        return data

    def close(self) -> None:
        for f in self._open.values():
            f.close()
        self._open.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_member(folder: str | os.PathLike, member: Member) -> bytes:
    """One member's bytes (opens and closes its shard)."""
    with open(Path(folder) / member.shard, "rb") as f:
        f.seek(member.offset)
        data = f.read(member.bytes)
    if len(data) != member.bytes:
        raise OSError(f"{Path(folder) / member.shard}: member at {member.offset} is cut short")
    return data


class Usage:
    """Which members of each shard the records name, to tell shards holding unnamed members.

    A shard's named members are sorted, disjoint byte ranges (a member's header to its end),
    merged where they touch: records name members mostly in shard order, so a shard whose every
    member is named is one range, and memory grows with the gaps between named members, not
    with the members."""

    def __init__(self) -> None:
        self._starts: dict[str, array] = {}
        self._ends: dict[str, array] = {}
        self._bytes: dict[str, int] = {}

    def add(self, member: Member) -> None:
        start, end = member.offset - BLOCK, member.end
        starts = self._starts.setdefault(member.shard, array("q"))
        ends = self._ends.setdefault(member.shard, array("q"))
        i = bisect_right(starts, start)  # ranges [0, i) start at or before this member
        if i and ends[i - 1] > start:
            return  # inside a named range: reposts share one member
        joins_left = i > 0 and ends[i - 1] == start
        joins_right = i < len(starts) and starts[i] == end
        if joins_left and joins_right:
            ends[i - 1] = ends[i]
            del starts[i], ends[i]
        elif joins_left:
            ends[i - 1] = end
        elif joins_right:
            starts[i] = start
        else:
            starts.insert(i, start)
            ends.insert(i, end)
        self._bytes[member.shard] = self._bytes.get(member.shard, 0) + padded(member.bytes)

    def used(self, shard: str) -> bool:
        return shard in self._starts

    def end(self, shard: str) -> int:
        """Where the shard's last named member ends (0 when none is named)."""
        ends = self._ends.get(shard)
        return ends[-1] if ends else 0

    def whole(self, path: Path) -> bool:
        """Whether every member of the shard at `path` is named (its size says so; past the named
        bytes only tar's end marker may follow, which is read to tell it from a small member)."""
        named = self._bytes.get(path.name, 0)
        size = path.stat().st_size
        return size == named or (size == named + len(END) and ends_with_marker(path))

    def shards(self) -> set[str]:
        return set(self._starts)


def ends_with_marker(path: Path) -> bool:
    """Whether the file ends in tar's end marker. An unnamed member of up to 512 bytes also takes
    exactly its 1024 bytes (header and one block), so the size alone cannot tell them apart."""
    with open(path, "rb") as f:
        f.seek(-len(END), os.SEEK_END)
        return f.read() == END


def cut_tail(folder: str | os.PathLike, prefix: str, usage: Usage) -> int:
    """Cut the last shard back to the end of its last named member (a killed run's unnamed or torn
    members after it); a shared shard is left alone. Returns the bytes dropped."""
    shards = ShardFolder(folder, prefix)
    names = shards.names()
    if not names or not usage.used(names[-1]):
        return 0
    path = shards.path(names[-1])
    end, size = usage.end(names[-1]), path.stat().st_size
    if size <= end or (size == end + len(END) and ends_with_marker(path)) or shared(path):
        return 0
    with open(path, "r+b") as f:
        f.truncate(end)
        os.fsync(f.fileno())
    log.info("%s: cut back to its last member a record names (%d bytes dropped)", path, size - end)
    return size - end


def compact(folder: str | os.PathLike, prefix: str, usage: Usage, members: Iterable[Member], shard_size: int) -> dict[Member, Member]:
    """Copy the named members of shards that also hold unnamed ones into new shards.

    `members` are the locations every record names, in the order to keep. Returns old ->
    new location for what moved; the caller rewrites its records, then calls `remove_unused`.
    """
    shards = ShardFolder(folder, prefix)
    partial = {n for n in shards.names() if usage.used(n) and not usage.whole(shards.path(n))}
    moved: dict[Member, Member] = {}
    if not partial:
        return moved
    with ShardWriter(shards.folder, prefix, shard_size, reopen=False) as writer, ShardReader(shards.folder) as reader:
        for member in members:
            if member.shard in partial and member not in moved:
                header = Member(member.shard, member.offset - BLOCK, BLOCK)
                name = tarfile.TarInfo.frombuf(reader.read(header), tarfile.ENCODING, "surrogateescape").name
                moved[member] = writer.add(name, reader.read(member))
    log.info("%s: copied %d members out of %d shards that also held members no record names", shards.folder, len(moved), len(partial))
    return moved


def remove_unused(folder: str | os.PathLike, prefix: str, usage: Usage) -> int:
    """Delete shards no record names (after the records naming their replacements are on disk)."""
    shards = ShardFolder(folder, prefix)
    removed = 0
    for name in shards.names():
        if not usage.used(name):
            shards.path(name).unlink()
            removed += 1
    for stray in shards.folder.glob(f".{prefix}-*.tmp") if shards.folder.is_dir() else ():
        stray.unlink()
    return removed
