"""The runtime's cgroup driver: one interface, a v1 and a v2 implementation.

``detect()`` picks by what the host mounted: cgroup v2 when ``/sys/fs/cgroup`` itself is
a cgroup2 mount (the unified layout), else the v1 hierarchies. A hybrid host (v1
controllers plus an empty ``/sys/fs/cgroup/unified``) gets v1, where its limits live.
"""

from __future__ import annotations

from pathlib import Path

from agent.runtime.cgroups.base import (
    CgroupBusy,
    CgroupDriver,
    CgroupError,
    CgroupFileError,
    ControllerUnavailable,
    InvalidCgroupName,
    Limits,
    Mount,
    read_mounts,
)
from agent.runtime.cgroups.v1 import V1Driver, v1_roots
from agent.runtime.cgroups.v2 import V2Driver

CGROUP_ROOT = Path("/sys/fs/cgroup")

__all__ = [
    "CgroupBusy",
    "CgroupDriver",
    "CgroupError",
    "CgroupFileError",
    "ControllerUnavailable",
    "InvalidCgroupName",
    "Limits",
    "V1Driver",
    "V2Driver",
    "detect",
]


def detect(subtree: str = "pyprov", mounts: list[Mount] | None = None) -> CgroupDriver:
    """The driver for this host (``mounts`` defaults to ``/proc/self/mounts``)."""
    mounts = read_mounts() if mounts is None else mounts
    if any(m.point == CGROUP_ROOT and m.fstype == "cgroup2" for m in mounts):
        return V2Driver(CGROUP_ROOT, subtree)
    roots = v1_roots(mounts)
    if not roots:
        raise CgroupError("no cgroup v2 at /sys/fs/cgroup and no cgroup v1 controller mounted")
    return V1Driver(roots, subtree)
