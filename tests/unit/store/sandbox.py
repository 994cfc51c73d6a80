"""Run a hostile-layer case where a broken extractor cannot damage this machine.

The case runs in a forked child with its own mount namespace in which every mount but
the test's temp dir is read-only: a write that escapes the unpack root through ``/etc``
or ``/`` fails there with EROFS (the test sees a stray error and fails) instead of
replacing the host's files. Writes into the temp dir (where the victim files are) still
land, so the parent's before/after snapshots still see an escape.
"""

from __future__ import annotations

import ctypes
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, flags: int) -> None:
    _check(_libc.mount(source and source.encode(), target.encode(), None, flags, None),
           f"mount {target}")


def _read_only_except(writable: Path) -> None:
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _mount(None, "/", MS_REC | MS_PRIVATE)
    _mount(str(writable), str(writable), MS_BIND)  # its own mount: stays writable
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for target in mounts:  # every other mount point, the root included, read-only
        if target != str(writable) and target.startswith("/") and not target.startswith(
                ("/proc", "/sys", "/dev")):
            try:
                _mount(None, target, MS_BIND | MS_REMOUNT | MS_RDONLY)
            except OSError:
                continue


def sandboxed(call: Callable[[], T], writable: Path) -> T:
    """``call()`` in a child whose only writable place is ``writable``; its result, or
    its exception re-raised here."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(reader)
        try:
            _read_only_except(writable)
            outcome: tuple[bool, object] = (True, call())
        except BaseException as error:
            outcome = (False, error)
        try:
            data = pickle.dumps(outcome)
        except Exception as error:
            data = pickle.dumps((False, RuntimeError(f"unpicklable outcome: {error!r}")))
        with os.fdopen(writer, "wb") as out:
            out.write(data)
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as source:
        data = source.read()
    os.waitpid(pid, 0)
    ok, value = pickle.loads(data)  # noqa: S301 - our own child's bytes
    if not ok:
        raise value  # type: ignore[misc]
    return value  # type: ignore[no-any-return]
