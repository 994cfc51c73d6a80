"""The cgroup drivers against the host's real cgroups: limits read back from the kernel,
enforced on real processes (OOM kill, fork refusal), kill_all against a fork bomb, and the
v2 driver on the controller-less ``/sys/fs/cgroup/unified`` of a hybrid host.

Every test works in its own ``pyprov-test-<random>`` subtree, scrubbed in a ``finally``
(processes killed, directories removed) by code that does not trust the driver.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from agent.runtime.cgroups import (
    CgroupBusy,
    ControllerUnavailable,
    InvalidCgroupName,
    Limits,
    V1Driver,
    V2Driver,
    detect,
)
from agent.runtime.cgroups.base import CgroupError, parse_mounts
from tests.waiting import poll

UNIFIED = Path("/sys/fs/cgroup/unified")
MIB = 1 << 20

Spawn = Callable[..., subprocess.Popen[str]]


def scrub(top: Path) -> None:
    """Thaw, kill and remove everything under a test subtree, then the subtree."""
    if not top.is_dir():
        return
    for child in (p for p in top.iterdir() if p.is_dir()):
        for control, thawed in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
            with suppress(OSError):
                (child / control).write_text(thawed)
        for _ in range(300):
            pids = [int(p) for p in (child / "cgroup.procs").read_text().split()]
            if not pids:
                break
            for pid in pids:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        child.rmdir()
    top.rmdir()



@pytest.fixture
def subtree() -> str:
    return f"pyprov-test-{secrets.token_hex(4)}"


@pytest.fixture
def v1(subtree: str) -> Iterator[V1Driver]:
    driver = detect(subtree)
    assert isinstance(driver, V1Driver), "this host is hybrid: v1 controllers expected"
    try:
        yield driver
    finally:
        for root in set(driver.roots.values()):
            scrub(root / subtree)


@pytest.fixture
def v2(subtree: str) -> Iterator[V2Driver]:
    try:
        yield V2Driver(UNIFIED, subtree)
    finally:
        scrub(UNIFIED / subtree)


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start a child held at a gate (it reads one line first), so it can be attached
    before it does what the test is about; every child is killed and reaped at the end."""
    children: list[subprocess.Popen[str]] = []

    def start(*argv: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        children.append(child)
        return child

    try:
        yield start
    finally:
        for child in children:
            with suppress(ProcessLookupError):
                child.kill()
            child.communicate(timeout=5)


def release(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.flush()


def proc_cgroups(pid: int) -> set[str]:
    return set(Path(f"/proc/{pid}/cgroup").read_text().splitlines())


def v1_file(driver: V1Driver, controller: str, name: str, filename: str) -> str:
    return (driver.roots[controller] / name / filename).read_text().strip()


# --- detection ---------------------------------------------------------------------------

def test_detect_picks_v1_on_this_hybrid_host(subtree: str) -> None:
    driver = detect(subtree)
    assert isinstance(driver, V1Driver)
    assert {"memory", "cpu", "cpuacct", "pids", "freezer"} <= set(driver.roots)


def test_detect_picks_v2_when_sys_fs_cgroup_is_cgroup2() -> None:
    mounts = parse_mounts("cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec 0 0\n")
    assert isinstance(detect("pyprov", mounts), V2Driver)


def test_detect_reads_co_mounted_controllers() -> None:
    mounts = parse_mounts(
        "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n"
        "cgroup /sys/fs/cgroup/freezer cgroup rw,freezer 0 0\n"
        "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
    )
    driver = detect("pyprov", mounts)
    assert isinstance(driver, V1Driver)
    assert driver.roots["cpu"] == driver.roots["cpuacct"] == Path("/sys/fs/cgroup/cpu,cpuacct")


# --- v1 ----------------------------------------------------------------------------------

def test_v1_limits_are_what_the_kernel_reads_back(v1: V1Driver, subtree: str) -> None:
    name = f"{subtree}/c1"
    v1.create(name, Limits(memory=64 * MIB, cpus=1.5, pids=10))
    v1.create(name, Limits(memory=64 * MIB, cpus=1.5, pids=10))  # idempotent
    assert v1_file(v1, "memory", name, "memory.limit_in_bytes") == str(64 * MIB)
    assert v1_file(v1, "cpu", name, "cpu.cfs_period_us") == "100000"
    assert v1_file(v1, "cpu", name, "cpu.cfs_quota_us") == "150000"
    assert v1_file(v1, "pids", name, "pids.max") == "10"

    v1.create(name, Limits())  # declarative: no limit means back to unlimited
    assert int(v1_file(v1, "memory", name, "memory.limit_in_bytes")) > 1 << 60
    assert v1_file(v1, "cpu", name, "cpu.cfs_quota_us") == "-1"
    assert v1_file(v1, "pids", name, "pids.max") == "max"


def test_v1_attach_moves_a_real_process(v1: V1Driver, subtree: str, spawn: Spawn) -> None:
    name = f"{subtree}/c1"
    v1.create(name, Limits())
    child = spawn("sleep", "30")
    v1.attach(name, child.pid)
    assert v1.pids(name) == [child.pid]
    lines = proc_cgroups(child.pid)
    for controller in ("memory", "cpu", "cpuacct", "pids", "freezer"):
        assert any(line.endswith(f":{controller}:/{name}") for line in lines), lines
    stats = v1.stats(name)
    assert stats["pids_current"] == 1
    assert set(stats) == {"memory_bytes", "pids_current", "cpu_ns"}


def test_v1_memory_limit_oom_kills(v1: V1Driver, subtree: str, spawn: Spawn) -> None:
    name = f"{subtree}/c1"
    v1.create(name, Limits(memory=32 * MIB))
    hog = spawn(sys.executable, "-c", "import sys; sys.stdin.readline(); b = b'x' * (100 << 20)")
    v1.attach(name, hog.pid)
    release(hog)
    hog.communicate(timeout=10)
    assert hog.returncode == -signal.SIGKILL
    assert int(v1_file(v1, "memory", name, "memory.failcnt")) > 0
    oom = dict(line.split() for line in v1_file(v1, "memory", name, "memory.oom_control")
               .splitlines())
    assert int(oom["oom_kill"]) >= 1


def test_v1_pids_limit_refuses_forks(v1: V1Driver, subtree: str, spawn: Spawn) -> None:
    name = f"{subtree}/c1"
    v1.create(name, Limits(pids=3))
    shell = spawn("sh", "-c", "read x; for i in 1 2 3 4 5 6; do sleep 0.3 & done; wait")
    v1.attach(name, shell.pid)
    release(shell)
    _, stderr = shell.communicate(timeout=10)
    assert "fork" in stderr.lower(), stderr
    events = v1_file(v1, "pids", name, "pids.events").split()
    assert events[0] == "max"
    assert int(events[1]) >= 1


def test_v1_kill_all_stops_a_fork_bomb(v1: V1Driver, subtree: str, spawn: Spawn) -> None:
    """Every process forks again and again: only a frozen cgroup can be killed whole.

    Killed while still growing (pids.max only bounds the test): on this host a naive
    signal-each-listed-pid left 290 of 300 alive in one run of three; kill_all none.
    """
    name = f"{subtree}/c1"
    v1.create(name, Limits(pids=300))
    bomb = spawn(sys.executable, "-c", (
        "import os, sys, time\n"
        "sys.stdin.readline()\n"
        "while True:\n"
        "    try: os.fork()\n"
        "    except OSError: time.sleep(0.001)\n"
    ))
    v1.attach(name, bomb.pid)
    release(bomb)
    assert poll(lambda: len(v1.pids(name)) >= 10)
    v1.kill_all(name, signal.SIGKILL)
    assert poll(lambda: v1.pids(name) == [], timeout=2)
    assert v1_file(v1, "freezer", name, "freezer.state") == "THAWED"
    v1.remove(name)


def test_v1_kill_all_delivers_other_signals(v1: V1Driver, subtree: str, spawn: Spawn) -> None:
    name = f"{subtree}/c1"
    v1.create(name, Limits())
    children = [spawn("sleep", "30") for _ in range(3)]
    for child in children:
        v1.attach(name, child.pid)
    v1.kill_all(name, signal.SIGTERM)
    for child in children:
        child.communicate(timeout=5)
        assert child.returncode == -signal.SIGTERM
    v1.remove(name)


def test_v1_remove_cleans_every_directory(v1: V1Driver, subtree: str) -> None:
    name = f"{subtree}/c1"
    v1.create(name, Limits(memory=64 * MIB, cpus=0.5, pids=10))
    dirs = {root / name for root in v1.roots.values()}
    assert all(d.is_dir() for d in dirs)
    v1.remove(name)
    assert not any(d.exists() for d in dirs)
    v1.remove(name)  # idempotent
    v1.kill_all(name, signal.SIGKILL)  # nothing there: nothing to do
    assert v1.pids(name) == []


def test_v1_remove_never_kills_on_its_own(v1: V1Driver, subtree: str, spawn: Spawn) -> None:
    """A populated cgroup is CgroupBusy after the short wait; its process lives on."""
    name = f"{subtree}/c1"
    v1.create(name, Limits())
    child = spawn("sleep", "30")
    v1.attach(name, child.pid)
    with pytest.raises(CgroupBusy) as caught:
        v1.remove(name)
    assert caught.value.pids == [child.pid]
    assert child.poll() is None
    v1.kill_all(name, signal.SIGKILL)
    v1.remove(name)
    assert not any((root / name).exists() for root in v1.roots.values())


HOSTILE = ["../x", "a/b/c", "/abs", "/sys/fs/cgroup/memory/x", "{s}/..", "{s}/.", "{s}/a/b",
           "other/x", "{s}", "{s}/", "", "{s}/x\n", "{s}/-rf", "{s}/a b"]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_names_are_refused(v1: V1Driver, v2: V2Driver, subtree: str,
                                   hostile: str) -> None:
    name = hostile.format(s=subtree)
    for driver in (v1, v2):
        with pytest.raises(InvalidCgroupName):
            driver.create(name, Limits())
        with pytest.raises(InvalidCgroupName):
            driver.attach(name, os.getpid())
        with pytest.raises(InvalidCgroupName):
            driver.remove(name)
    assert not any((root / subtree).exists() for root in v1.roots.values())
    assert not (UNIFIED / subtree).exists()


def test_limits_must_be_positive() -> None:
    for bad in ({"memory": 0}, {"cpus": -1.0}, {"pids": 0}):
        with pytest.raises(CgroupError):
            Limits(**bad)


# --- v2 on the hybrid host's controller-less unified hierarchy ----------------------------

def test_v2_core_operations_work_without_controllers(v2: V2Driver, subtree: str,
                                                     spawn: Spawn) -> None:
    name = f"{subtree}/c1"
    v2.create(name, Limits())
    v2.create(name, Limits())  # idempotent
    child = spawn("sleep", "30")
    v2.attach(name, child.pid)
    assert v2.pids(name) == [child.pid]
    assert f"0::/{name}" in proc_cgroups(child.pid)
    assert "cpu_ns" in v2.stats(name)
    v2.kill_all(name, signal.SIGKILL)  # cgroup.kill
    child.communicate(timeout=5)
    assert child.returncode == -signal.SIGKILL
    v2.remove(name)
    assert not (UNIFIED / name).exists()
    v2.remove(name)


def test_v2_kill_all_freezes_for_other_signals(v2: V2Driver, subtree: str,
                                              spawn: Spawn) -> None:
    name = f"{subtree}/c1"
    v2.create(name, Limits())
    children = [spawn("sleep", "30") for _ in range(3)]
    for child in children:
        v2.attach(name, child.pid)
    v2.kill_all(name, signal.SIGTERM)
    for child in children:
        child.communicate(timeout=5)
        assert child.returncode == -signal.SIGTERM
    assert (UNIFIED / name / "cgroup.freeze").read_text().strip() == "0"
    v2.remove(name)


@pytest.mark.parametrize(("limits", "controller"), [
    (Limits(memory=32 * MIB), "memory"),
    (Limits(cpus=1.5), "cpu"),
    (Limits(pids=10), "pids"),
])
def test_v2_limits_without_controller_are_refused(v2: V2Driver, subtree: str, limits: Limits,
                                                  controller: str) -> None:
    assert controller not in (UNIFIED / "cgroup.controllers").read_text().split()
    with pytest.raises(ControllerUnavailable) as caught:
        v2.create(f"{subtree}/c1", limits)
    assert caught.value.controller == controller
    assert controller in str(caught.value)
    assert not (UNIFIED / subtree).exists()  # refused before anything was made
