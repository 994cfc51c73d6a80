"""The cgroup v1 driver: one directory per controller, each under ``<root>/<subtree>/``.

A container's cgroup is ``<subtree>/<id>`` in each hierarchy pyprov uses: memory (limit,
usage), cpu (CFS quota), cpuacct (usage), pids (limit, count) and freezer (so
``kill_all`` can stop every task before signalling, and none escapes by forking).
Co-mounted controllers (``cpu,cpuacct``) share one directory, written once.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from pathlib import Path

from agent.runtime.cgroups.base import (
    CPU_PERIOD_US,
    REMOVE_WAIT,
    ControllerUnavailable,
    Limits,
    Mount,
    check_subtree,
    read_pids,
    read_value,
    rmdir_when_empty,
    signal_all,
    split_name,
    wait_until,
    write_value,
)

CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer")
FREEZE_WAIT = 1.0
"""How long ``kill_all`` waits for FROZEN; a task stuck in the kernel can delay it."""


def v1_roots(mounts: list[Mount]) -> dict[str, Path]:
    """Each v1 controller pyprov uses -> the root of the hierarchy it is mounted on."""
    roots: dict[str, Path] = {}
    for mount in mounts:
        if mount.fstype == "cgroup":
            for controller in CONTROLLERS:
                if controller in mount.options:
                    roots.setdefault(controller, mount.point)
    return roots


class V1Driver:
    """``CgroupDriver`` over cgroup v1 hierarchies (``roots``: controller -> mount).

    The freezer is required up front: without it ``kill_all`` could not promise that no
    process escapes, and that promise is what the runtime's stop path rests on.
    """

    def __init__(self, roots: Mapping[str, Path], subtree: str = "pyprov") -> None:
        self.roots = dict(roots)
        self.subtree = check_subtree(subtree)
        self._require("freezer")

    def _dir(self, controller: str, name: str) -> Path | None:
        root = self.roots.get(controller)
        return None if root is None else root.joinpath(*split_name(name, self.subtree))

    def _dirs(self, name: str) -> list[Path]:
        """Every distinct directory of the cgroup, freezer last (it lists the processes)."""
        split_name(name, self.subtree)
        ordered = sorted(self.roots, key=lambda c: c == "freezer")
        dirs = [d for c in ordered if (d := self._dir(c, name)) is not None]
        return list(dict.fromkeys(dirs))

    def _require(self, controller: str) -> None:
        if controller not in self.roots:
            raise ControllerUnavailable(controller, "the cgroup v1 mounts")

    def create(self, name: str, limits: Limits) -> None:
        for controller, wanted in (("memory", limits.memory), ("cpu", limits.cpus),
                                   ("pids", limits.pids)):
            if wanted is not None:
                self._require(controller)
        for directory in self._dirs(name):
            directory.mkdir(parents=True, exist_ok=True)
        self._write_limits(name, limits)

    def _write_limits(self, name: str, limits: Limits) -> None:
        """Set every limit pyprov manages, unset ones back to unlimited (declarative)."""
        if (memory := self._dir("memory", name)) is not None:
            value = "-1" if limits.memory is None else str(limits.memory)
            write_value(memory / "memory.limit_in_bytes", value)
        if (cpu := self._dir("cpu", name)) is not None:
            write_value(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            quota = limits.cpu_quota_us()
            write_value(cpu / "cpu.cfs_quota_us", "-1" if quota is None else str(quota))
        if (pids := self._dir("pids", name)) is not None:
            write_value(pids / "pids.max", "max" if limits.pids is None else str(limits.pids))

    def attach(self, name: str, pid: int) -> None:
        for procs in self.procs_files(name):
            write_value(procs, str(pid))

    def procs_files(self, name: str) -> list[Path]:
        return [directory / "cgroup.procs" for directory in self._dirs(name)]

    def pids(self, name: str) -> list[int]:
        return read_pids(self._dirs(name)[-1] / "cgroup.procs")

    def kill_all(self, name: str, signum: int) -> None:
        """Freeze, signal everything listed, thaw: a frozen task cannot fork a new one."""
        freezer = self._dirs(name)[-1]
        if not freezer.is_dir():
            return
        state = freezer / "freezer.state"
        write_value(state, "FROZEN")
        try:
            wait_until(lambda: read_value(state) == "FROZEN", FREEZE_WAIT)
            signal_all(self.pids(name), signum)
        finally:
            write_value(state, "THAWED")
        if signum == signal.SIGKILL:
            # Had freezing timed out, a task could have forked meanwhile: catch stragglers.
            wait_until(lambda: not _kill_again(self.pids(name)), REMOVE_WAIT)

    def remove(self, name: str) -> None:
        procs = self._dirs(name)[-1] / "cgroup.procs"
        for directory in self._dirs(name):
            rmdir_when_empty(directory, name, procs, REMOVE_WAIT)

    def stats(self, name: str) -> dict[str, int]:
        found: dict[str, int] = {}
        for key, controller, filename in (("memory_bytes", "memory", "memory.usage_in_bytes"),
                                          ("pids_current", "pids", "pids.current"),
                                          ("cpu_ns", "cpuacct", "cpuacct.usage")):
            directory = self._dir(controller, name)
            if directory is not None and (directory / filename).exists():
                found[key] = int(read_value(directory / filename))
        return found


def _kill_again(pids: list[int]) -> bool:
    """SIGKILL whatever is still listed; true while something was."""
    signal_all(pids, signal.SIGKILL)
    return bool(pids)
