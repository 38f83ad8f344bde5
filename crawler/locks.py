"""Advisory locks on folders (flock on the directory itself: no lock file lands in DVC's output).

A lock belongs to the open file description, so it is released when every process holding the
descriptor has exited, however it exits: a crawl's worker inherits its parent's descriptor, and a
lock outlives neither of them.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Self

from anigan.errors import UserError

POLL_SECONDS = 0.2


class FolderLock:
    """An exclusive lock on one folder; `release()` (or leaving the `with` block) lets it go."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd: int | None = fd
        self.path = path

    @classmethod
    def try_take(cls, path: str | os.PathLike) -> FolderLock | None:
        """The lock, or None when another holder has it."""
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(fd, Path(path))

    @classmethod
    def take(cls, path: str | os.PathLike, wait_seconds: float, busy: str) -> FolderLock:
        """The lock, waiting up to `wait_seconds` for it; a UserError saying `busy` when it stays taken."""
        deadline = time.monotonic() + wait_seconds
        while (lock := cls.try_take(path)) is None:
            if time.monotonic() >= deadline:
                raise UserError(busy)
            time.sleep(POLL_SECONDS)
        return lock

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor drops the lock
            self.fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def held(path: str | os.PathLike) -> bool:
    """Whether some process holds the lock on `path` now."""
    lock = FolderLock.try_take(path)
    if lock is None:
        return True
    lock.release()
    return False
