"""One pass at a time per host: an flock on the state dir's lock file.

The kernel drops an flock when its holder dies, so a ``kill -9`` never leaves a
stale lock behind. An applying pass holds it exclusively and writes who it is into
the file; a check pass holds it shared (it only reads, so checks may run together,
but never during an apply) and writes nothing. A waiting pass polls, so it can say
who holds the lock, and gives up after a timeout with ``LockTimeout``.
The lock is per state dir: agents given different ``--state-dir`` do not exclude
each other.
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
_HOLDER_BYTES = 128


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, _HOLDER_BYTES, 0).decode("utf-8", "replace").strip(" \n\0")
    except OSError:
        text = ""
    return text or "another pass"


@contextmanager
def host_lock(path: Path, timeout: float, on_wait: Callable[[str], None] | None = None,
              shared: bool = False) -> Iterator[None]:
    """Hold the host lock for the duration of the block."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        started = time.monotonic()
        announced = False
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= timeout:
                    raise LockTimeout(str(path), _holder(fd), waited) from None
                if not announced and on_wait is not None:
                    on_wait(_holder(fd))
                    announced = True
                time.sleep(_POLL_SECONDS)
        if not shared:
            # One fixed-size write: a waiter reads a whole line, never a truncated one.
            text = f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}\n".encode()
            os.pwrite(fd, text.ljust(_HOLDER_BYTES, b"\0"), 0)
        yield
    finally:
        os.close(fd)  # closing drops the flock
