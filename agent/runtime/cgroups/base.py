"""What both cgroup drivers share: the limits, the driver interface, the errors, name
validation and the raw reads and writes of cgroup files.

Errors::

    CgroupError                    (PyprovError) the cgroup driver could not do something
    ├── InvalidCgroupName          (name, reason) a name that could leave the pyprov subtree
    ├── ControllerUnavailable      (controller, hierarchy) a limit needs a controller the host lacks
    ├── CgroupFileError            (path, value, reason) the kernel refused a read or a write
    └── CgroupBusy                 (name, pids) processes still inside after the wait

cgroup files are kernel interfaces, not regular files: a value is one ``write(2)`` on the
file itself (no temporary file and rename, no buffering that could split it), and the
kernel's errno is the whole answer, so it is reported with the file and the value.
"""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agent.errors import PyprovError

CPU_PERIOD_US = 100_000
"""The CFS period pyprov uses on both versions: docker's default, so ``cpus`` reads the same."""

REMOVE_WAIT = 2.0
"""How long ``remove`` waits for exiting processes to leave before it gives up."""

_SAFE_COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class CgroupError(PyprovError):
    """Root of the cgroup driver's errors."""


class InvalidCgroupName(CgroupError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"refused cgroup name {name!r}: {reason}")
        self.name, self.reason = name, reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.name, self.reason)


class ControllerUnavailable(CgroupError):
    def __init__(self, controller: str, hierarchy: str) -> None:
        super().__init__(
            f"the {controller} controller is not available in {hierarchy}, so its limit "
            "cannot be applied (it may be bound to a cgroup v1 hierarchy or disabled)"
        )
        self.controller, self.hierarchy = controller, hierarchy

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.controller, self.hierarchy)


class CgroupFileError(CgroupError):
    """``value`` is what was written, or ``None`` for a read."""

    def __init__(self, path: str, value: str | None, reason: str) -> None:
        action = "reading" if value is None else f"writing {value!r} to"
        super().__init__(f"{action} {path} failed: {reason}")
        self.path, self.value, self.reason = path, value, reason

    def __reduce__(self) -> tuple[type, tuple[str, str | None, str]]:
        return type(self), (self.path, self.value, self.reason)


class CgroupBusy(CgroupError):
    def __init__(self, name: str, pids: list[int]) -> None:
        super().__init__(
            f"cgroup {name} still holds processes {pids} after {REMOVE_WAIT:.0f}s; "
            "kill_all them first"
        )
        self.name, self.pids = name, pids

    def __reduce__(self) -> tuple[type, tuple[str, list[int]]]:
        return type(self), (self.name, self.pids)


@dataclass(frozen=True)
class Limits:
    """A container's resource limits, in compose's units."""

    memory: int | None = None
    """Bytes (compose ``mem_limit``)."""
    cpus: float | None = None
    """CPUs (compose ``cpus``): 1.5 is one and a half CPUs of time per period."""
    pids: int | None = None
    """Tasks (compose ``pids_limit``)."""

    def __post_init__(self) -> None:
        for field, value in (("memory", self.memory), ("cpus", self.cpus), ("pids", self.pids)):
            if value is not None and value <= 0:
                raise CgroupError(f"limit {field} must be positive, got {value!r}")

    def cpu_quota_us(self) -> int | None:
        """The CFS quota for ``cpus`` over ``CPU_PERIOD_US``; ``None`` means no quota."""
        return None if self.cpus is None else round(self.cpus * CPU_PERIOD_US)


class CgroupDriver(Protocol):
    """One container's cgroup, by name (``pyprov/<container-id>``), on either version."""

    def create(self, name: str, limits: Limits) -> None:
        """Make the cgroup and set exactly ``limits`` (``None`` resets to unlimited)."""

    def attach(self, name: str, pid: int) -> None:
        """Move process ``pid`` (all its threads) into the cgroup."""

    def procs_files(self, name: str) -> list[Path]:
        """The ``cgroup.procs`` files a process writes its own pid to, to join the cgroup
        (the container's launcher does, so its init is born inside)."""

    def pids(self, name: str) -> list[int]:
        """The processes in the cgroup now, sorted."""

    def kill_all(self, name: str, signum: int) -> None:
        """Signal every process in the cgroup, with none able to escape by forking."""

    def remove(self, name: str) -> None:
        """Remove the cgroup once its processes are gone; absent is fine."""

    def stats(self, name: str) -> dict[str, int]:
        """``memory_bytes``, ``pids_current``, ``cpu_ns``: those the host can tell."""


def split_name(name: str, subtree: str) -> tuple[str, str]:
    """``subtree/leaf`` -> (subtree, leaf), refusing anything that could land elsewhere.

    Exactly two components, the first being the driver's subtree, each from a safe
    charset that cannot spell ``.``, ``..`` or a path separator: a container id can
    never address a cgroup it does not own.
    """
    parts = name.split("/")
    if len(parts) != 2:
        raise InvalidCgroupName(name, f"expected {subtree}/<id>")
    top, leaf = parts
    if top != subtree:
        raise InvalidCgroupName(name, f"not under the {subtree} subtree")
    if not _SAFE_COMPONENT.fullmatch(leaf):
        raise InvalidCgroupName(name, "the id must be letters, digits, '_', '.', '-'")
    return top, leaf


def check_subtree(subtree: str) -> str:
    """The driver's own subtree name must be one safe component too."""
    if not _SAFE_COMPONENT.fullmatch(subtree):
        raise InvalidCgroupName(subtree, "a subtree must be one safe path component")
    return subtree


def write_value(path: Path, value: str) -> None:
    """One ``write(2)`` of ``value`` to the cgroup file ``path``."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        raise CgroupFileError(str(path), value, e.strerror or str(e)) from e
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise CgroupFileError(str(path), value, e.strerror or str(e)) from e
    finally:
        os.close(fd)


def read_value(path: Path) -> str:
    """The content of a cgroup file, stripped."""
    try:
        return path.read_text().strip()
    except OSError as e:
        raise CgroupFileError(str(path), None, e.strerror or str(e)) from e


def read_pids(procs: Path) -> list[int]:
    """The pids listed in a ``cgroup.procs``; an absent cgroup holds none."""
    if not procs.parent.is_dir():
        return []
    return sorted(int(line) for line in read_value(procs).split())


def read_keyed(path: Path) -> dict[str, int]:
    """A flat-keyed cgroup file (``key value`` lines), such as ``cpu.stat``."""
    pairs = (line.split() for line in read_value(path).splitlines())
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].lstrip("-").isdigit()}


def signal_all(pids: Iterable[int], signum: int) -> None:
    """Signal each pid; one that has already exited is not an error."""
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            continue


def wait_until(done: Callable[[], bool], timeout: float) -> bool:
    """Poll ``done`` every few milliseconds until it is true or time is up."""
    deadline = time.monotonic() + timeout
    while True:
        if done():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


def rmdir_when_empty(directory: Path, name: str, procs: Path, timeout: float) -> None:
    """rmdir a cgroup directory, waiting for its last processes to finish exiting.

    An exiting task can hold the cgroup for a moment after its signal (EBUSY), so the
    rmdir is retried until ``timeout``; a cgroup that stays populated is ``CgroupBusy``.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            directory.rmdir()
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise CgroupFileError(str(directory), None, f"rmdir: {e.strerror}") from e
            if time.monotonic() >= deadline:
                raise CgroupBusy(name, read_pids(procs)) from e
            time.sleep(0.01)
        else:
            return



@dataclass(frozen=True)
class Mount:
    """One line of ``/proc/self/mounts``: where, which filesystem, with which options."""

    point: Path
    fstype: str
    options: frozenset[str]


def parse_mounts(text: str) -> list[Mount]:
    """``/proc/self/mounts`` as ``Mount`` records (octal escapes such as ``\\040`` decoded)."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[1])
            found.append(Mount(Path(point), fields[2], frozenset(fields[3].split(","))))
    return found


def read_mounts() -> list[Mount]:
    return parse_mounts(Path("/proc/self/mounts").read_text())
