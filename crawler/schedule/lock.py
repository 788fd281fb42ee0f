"""One ``finpatrol serve`` per state_dir: an exclusive ``flock`` on ``state_dir/serve.lock``.

Two services on the same state would run every job twice and collide in the state
DB. The lock is held for the life of the service and released by the kernel when
the process ends, however it ends (no stale lock after a crash or SIGKILL). On a local
filesystem: over NFS a flock may hold only on the host that took it. The
file keeps the holder's pid, so a refused second service can name it; the file
itself is never removed (removing a flock file races with a process opening it).
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)
LOCK_NAME = "serve.lock"


class AlreadyRunning(Exception):
    """Another process holds the service lock of this state_dir."""

    def __init__(self, path: Path, pid: int | None):
        self.path, self.pid = path, pid
        holder = f"pid {pid}" if pid else "another process"
        super().__init__(f"another finpatrol serve is running on this state_dir: {path} is locked by {holder}")


class ServeLock:
    """``with ServeLock(state_dir):`` holds the lock or raises :class:`AlreadyRunning` at once."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir).absolute() / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by crawl subprocesses
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise AlreadyRunning(self.path, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        logger.info("serve lock %s held by pid %s", self.path, os.getpid())

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "ServeLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
