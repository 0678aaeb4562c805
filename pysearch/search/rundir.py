"""One search per run directory: an exclusive ``flock`` on ``DIR/run.lock`` while a run uses it.

Two processes writing one directory's checkpoint would leave a mix of both runs, so a run holds
the lock from before it reads the directory until it ends. The kernel drops an ``flock`` when
its holder dies, however it dies (SIGKILL included), so a lock file left behind never blocks
the next run; the pid written in it only names the holder in the error message.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

LOCK_NAME = "run.lock"


class RunDirectoryBusy(ValueError):
    """Another live process holds the run directory's lock."""


class RunLock:
    """Context manager holding the exclusive lock of a run directory (created if missing)."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        """Take the lock now; raise :class:`RunDirectoryBusy` naming the holder's pid if it is taken."""
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise RunDirectoryBusy(f"{self.path} is a symbolic link; remove it") from None
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_pid(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = f" (pid {holder})" if holder else ""
                raise RunDirectoryBusy(
                    f"run directory {self.directory} is in use by another pysearch run{who}"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (closing the file releases it); the file stays for the next run."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
