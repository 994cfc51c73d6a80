"""The Linux system calls the runtime needs and Python 3.11's ``os`` lacks, in one place.

Standard library and ctypes only: this module is imported by the monitor zygote before
it freezes its heap, so every monitor shares it. Every call raises ``OSError`` with the
errno and the call's name, as ``os`` does.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_STRICTATIME = 0x1000000
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "armv7l": 218, "ppc64le": 203,
                   "s390x": 217, "riscv64": 41}

# Docker's default capability set (moby's oci/caps/defaults.go), by number.
CAPABILITIES = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4,
    "KILL": 5, "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9,
    "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13,
    "IPC_LOCK": 14, "IPC_OWNER": 15, "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18,
    "SYS_PTRACE": 19, "SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23,
    "SYS_RESOURCE": 24, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28,
    "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30, "SETFCAP": 31, "MAC_OVERRIDE": 32,
    "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35, "BLOCK_SUSPEND": 36, "AUDIT_READ": 37,
    "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}
DOCKER_DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW",
                       "SETGID", "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE",
                       "SYS_CHROOT", "KILL", "AUDIT_WRITE")

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, call: str, *args: object) -> int:
    if result < 0:
        code = ctypes.get_errno()
        detail = ", ".join(str(arg) for arg in args if arg is not None)
        raise OSError(code, f"{call}({detail}): {os.strerror(code)}")
    return result


def _bytes(path: str | bytes | None) -> bytes | None:
    return os.fsencode(path) if path is not None else None


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare", hex(flags))


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns", fd)


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
          data: str | None = None) -> None:
    _check(_libc.mount(_bytes(source), _bytes(target), _bytes(fstype),
                       ctypes.c_ulong(flags), _bytes(data)), "mount", source, target, fstype)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_bytes(target), ctypes.c_int(flags)), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    number = _SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise OSError(38, f"pivot_root: unknown system call number on {os.uname().machine}")
    _check(_libc.syscall(ctypes.c_long(number), _bytes(new_root), _bytes(put_old)),
           "pivot_root", new_root)


def sethostname(name: str) -> None:
    data = name.encode()
    _check(_libc.sethostname(data, ctypes.c_size_t(len(data))), "sethostname", name)


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    return _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2),
                              ctypes.c_ulong(arg3), ctypes.c_ulong(0), ctypes.c_ulong(0)),
                  "prctl", option, arg2)


def last_capability() -> int:
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_bytes())
    except (OSError, ValueError):
        return max(CAPABILITIES.values())


def capability_mask(names: tuple[str, ...] | list[str]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITIES[name.upper().removeprefix("CAP_")]
    return mask


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32))


def limit_capabilities(keep: int) -> None:
    """Drop every capability outside ``keep`` from the bounding set, clear the ambient set,
    and set effective = permitted = ``keep`` with nothing inheritable (moby since 23.0).
    A later ``setuid`` to a non-root user clears effective and permitted, as docker's
    non-root containers have it."""
    for cap in range(last_capability() + 1):
        if not keep >> cap & 1:
            prctl(PR_CAPBSET_DROP, cap)
    with contextlib.suppress(OSError):  # kernels before 4.3 have no ambient set
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for index in (0, 1):
        word = keep >> (32 * index) & 0xFFFFFFFF
        data[index].effective = data[index].permitted = word
        data[index].inheritable = 0
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_child_subreaper() -> None:
    """Orphans below this process are reparented to it (the monitor adopts the container
    init its short-lived launcher forked)."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def set_parent_death_signal(signum: int) -> None:
    prctl(PR_SET_PDEATHSIG, signum)


# Terminal ioctls Python's termios lacks: asm-generic numbers, and powerpc's own encoding.
_TIOCSPTLCK = {"ppc64le": 0x80045431}
_TIOCGPTPEER = {"ppc64le": 0x20005441}


def unlock_pty(master: int) -> None:
    """``unlockpt``: the slave of a new pty master may be opened."""
    request = _TIOCSPTLCK.get(os.uname().machine, 0x40045431)
    unlocked = ctypes.c_int(0)
    _check(_libc.ioctl(ctypes.c_int(master), ctypes.c_ulong(request), ctypes.byref(unlocked)),
           "ioctl(TIOCSPTLCK)", master)


def open_pty_peer(master: int, flags: int) -> int:
    """The slave of ``master``, opened through the master itself (``TIOCGPTPEER``, Linux
    4.13) rather than by a /dev/pts path that whoever owns the devpts could swap."""
    request = _TIOCGPTPEER.get(os.uname().machine, 0x5441)
    return _check(_libc.ioctl(ctypes.c_int(master), ctypes.c_ulong(request),
                              ctypes.c_int(flags)), "ioctl(TIOCGPTPEER)", master)


_SYS_CLOSE_RANGE = 436  # the same on every architecture (the unified table of new calls)
CLOSE_RANGE_CLOEXEC = 1 << 2


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    """Close (or with ``CLOSE_RANGE_CLOEXEC`` mark close-on-exec) every fd from ``first``
    to ``last``, however high, in one call (Linux 5.9; ENOSYS before)."""
    _check(_libc.syscall(ctypes.c_long(_SYS_CLOSE_RANGE), ctypes.c_uint(first),
                         ctypes.c_uint(last), ctypes.c_uint(flags)), "close_range", first, last)
