"""The cgroup v2 driver: one directory, ``<mount>/<subtree>/<id>``.

Creating, attaching, listing, freezing, killing and removing are core cgroup v2 and work
with no controller at all; limits need the memory, cpu or pids controller enabled down
the path (``+memory`` in each ancestor's ``cgroup.subtree_control``). A host can have a
v2 hierarchy whose controllers are bound to v1 instead: asking it for a limit is a
``ControllerUnavailable`` naming the controller, never a silently unlimited container.
"""

from __future__ import annotations

import signal
from pathlib import Path

from agent.runtime.cgroups.base import (
    CPU_PERIOD_US,
    REMOVE_WAIT,
    CgroupFileError,
    ControllerUnavailable,
    Limits,
    check_subtree,
    read_keyed,
    read_pids,
    read_value,
    rmdir_when_empty,
    signal_all,
    split_name,
    wait_until,
    write_value,
)

CONTROLLERS = ("memory", "cpu", "pids")
FREEZE_WAIT = 1.0


class V2Driver:
    """``CgroupDriver`` over the unified hierarchy mounted at ``mount``."""

    def __init__(self, mount: Path = Path("/sys/fs/cgroup"), subtree: str = "pyprov") -> None:
        self.mount = mount
        self.subtree = check_subtree(subtree)

    def _dir(self, name: str) -> Path:
        return self.mount.joinpath(*split_name(name, self.subtree))

    def _available(self) -> set[str]:
        return set(read_value(self.mount / "cgroup.controllers").split())

    def create(self, name: str, limits: Limits) -> None:
        leaf = self._dir(name)
        wanted = {c for c, v in (("memory", limits.memory), ("cpu", limits.cpus),
                                 ("pids", limits.pids)) if v is not None}
        available = self._available()
        if missing := sorted(wanted - available):
            raise ControllerUnavailable(missing[0], str(self.mount))
        leaf.parent.mkdir(exist_ok=True)
        self._enable(available & set(CONTROLLERS), wanted)
        leaf.mkdir(exist_ok=True)
        self._write_limits(leaf, limits)

    def _enable(self, controllers: set[str], required: set[str]) -> None:
        """Delegate ``controllers`` from the mount down to the subtree's children.

        Those a limit needs must succeed; the others only feed ``stats``, so a refusal
        (say, cpu with realtime tasks in the root) costs nothing but a figure.
        """
        for parent in (self.mount, self.mount / self.subtree):
            control = parent / "cgroup.subtree_control"
            enabled = set(read_value(control).split())
            for controller in sorted(controllers - enabled):
                try:
                    write_value(control, f"+{controller}")
                except CgroupFileError:
                    if controller in required:
                        raise

    def _write_limits(self, leaf: Path, limits: Limits) -> None:
        """Set every limit pyprov manages, unset ones back to ``max`` where the file exists."""
        quota = limits.cpu_quota_us()
        for filename, value, unset in (
            ("memory.max", limits.memory, "max"),
            ("cpu.max", None if quota is None else f"{quota} {CPU_PERIOD_US}",
             f"max {CPU_PERIOD_US}"),
            ("pids.max", limits.pids, "max"),
        ):
            if value is not None:
                write_value(leaf / filename, str(value))
            elif (leaf / filename).exists():
                write_value(leaf / filename, unset)

    def attach(self, name: str, pid: int) -> None:
        write_value(self._dir(name) / "cgroup.procs", str(pid))

    def procs_files(self, name: str) -> list[Path]:
        return [self._dir(name) / "cgroup.procs"]

    def pids(self, name: str) -> list[int]:
        return read_pids(self._dir(name) / "cgroup.procs")

    def kill_all(self, name: str, signum: int) -> None:
        """``cgroup.kill`` for SIGKILL (atomic in the kernel); else freeze, signal, thaw."""
        leaf = self._dir(name)
        if not leaf.is_dir():
            return
        if signum == signal.SIGKILL and (leaf / "cgroup.kill").exists():
            write_value(leaf / "cgroup.kill", "1")
            return
        events = leaf / "cgroup.events"
        write_value(leaf / "cgroup.freeze", "1")
        try:
            wait_until(lambda: read_keyed(events).get("frozen") == 1, FREEZE_WAIT)
            signal_all(self.pids(name), signum)
        finally:
            write_value(leaf / "cgroup.freeze", "0")

    def remove(self, name: str) -> None:
        leaf = self._dir(name)
        rmdir_when_empty(leaf, name, leaf / "cgroup.procs", REMOVE_WAIT)

    def stats(self, name: str) -> dict[str, int]:
        leaf = self._dir(name)
        found: dict[str, int] = {}
        for key, filename in (("memory_bytes", "memory.current"),
                              ("pids_current", "pids.current")):
            if (leaf / filename).exists():
                found[key] = int(read_value(leaf / filename))
        cpu = read_keyed(leaf / "cpu.stat") if (leaf / "cpu.stat").exists() else {}
        if "usage_usec" in cpu:
            found["cpu_ns"] = cpu["usage_usec"] * 1000
        return found
