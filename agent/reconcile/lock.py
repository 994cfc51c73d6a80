"""One pass at a time per host: an flock on the state dir's lock file.

The kernel drops an flock when its holder dies, so a ``kill -9`` never leaves a
stale lock behind. A second pass waits (polling, so it can say who holds the
lock) and gives up after a timeout with ``LockTimeout``.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from agent.errors import LockTimeout

_POLL_SECONDS = 0.05


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "unknown process"


@contextmanager
def host_lock(path: Path, timeout: float,
              on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the host lock for the duration of the block."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        started = time.monotonic()
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= timeout:
                    raise LockTimeout(str(path), _holder(fd), waited) from None
                if not announced and on_wait is not None:
                    on_wait(_holder(fd))
                    announced = True
                time.sleep(_POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing drops the flock
