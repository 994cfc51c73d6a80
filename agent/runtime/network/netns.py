"""Persistent network namespaces kept alive by a bind mount of their nsfs file, at a path
the caller chooses (``<state>/netns/<container id>``), as ``ip netns add`` does under
/var/run/netns: pyprov's namespaces stay in pyprov's state directory, out of the way of
``ip netns`` and of other tools.

A forked child unshares the namespace (unshare moves the whole calling process, which the
agent must not do), brings ``lo`` up inside it and bind-mounts ``/proc/self/ns/net`` onto
the empty file; the mount keeps the namespace alive after the child exits. The child
makes three system calls through ctypes and leaves with ``os._exit``: nothing in it
waits on a lock another thread of the parent might have held at fork time.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import struct
from pathlib import Path

from agent.runtime import linux
from agent.runtime.network.errors import NetnsError

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = struct.Struct("16sH22x")
_MAX_ERROR = 1024


def is_netns(path: Path) -> bool:
    """Whether ``path`` is a network namespace's nsfs file (a live bind mount)."""
    try:
        return path.stat(follow_symlinks=False).st_dev == Path("/proc/self/ns/net").stat().st_dev
    except FileNotFoundError:
        return False


def create(path: Path) -> None:
    """Make ``path`` a new network namespace with ``lo`` up; a namespace already there is
    kept (idempotent), an empty file left by an interrupted create is reused."""
    if is_netns(path):
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o444))
    except OSError as error:
        raise NetnsError(str(path), f"cannot create the mount point: {error}") from None
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read_end)
        _child(str(path), write_end)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        reason = pipe.read(_MAX_ERROR).decode(errors="replace")
    _, status = os.waitpid(child, 0)
    if reason or os.waitstatus_to_exitcode(status) != 0:
        raise NetnsError(str(path), reason or f"child exited with status {status}")


def _child(path: str, report: int) -> None:  # pragma: no cover - runs in the child
    code = 1
    try:
        linux.unshare(linux.CLONE_NEWNET)
        _loopback_up()
        linux.mount("/proc/self/ns/net", path, None, linux.MS_BIND)
        code = 0
    except BaseException as error:  # everything goes back to the parent
        with contextlib.suppress(OSError):
            os.write(report, str(error).encode()[:_MAX_ERROR])
    finally:
        os._exit(code)


def _loopback_up() -> None:
    """``ip link set lo up`` with the old ioctl: the child has no netlink library."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        answer = fcntl.ioctl(sock, _SIOCGIFFLAGS, _IFREQ.pack(b"lo", 0))
        flags = _IFREQ.unpack(answer)[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, _IFREQ.pack(b"lo", flags | _IFF_UP))


def remove(path: Path) -> None:
    """Unmount (lazily: a process may still be inside) and unlink ``path``. A missing
    path, or one that is no longer mounted, is fine: removal is safe to repeat."""
    while is_netns(path):
        try:
            linux.umount2(str(path), linux.MNT_DETACH)
        except OSError as error:
            if error.errno != errno.EINVAL:
                raise NetnsError(str(path), f"cannot unmount: {error}") from None
            break
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as error:
        raise NetnsError(str(path), f"cannot remove: {error}") from None
