"""SIGKILL during repeated daemon.json writes: the file is always the old or the new one."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from agent.fsutil.atomic import atomic_write, temp_path
from agent.model import DaemonConfig
from agent.reconcile.actions import Options
from agent.reconcile.engine import reconcile
from agent.reconcile.handler import HostContext
from agent.resources import handlers
from agent.state import StateDir

KILLS = 150


def _alternate(docs: list[DaemonConfig], state: Path, ready_fd: int) -> None:
    """Apply ``docs`` in turn, forever, through the real engine and handler (a forked child)."""
    ctx = HostContext("localhost", StateDir(state))
    handler_map = handlers()
    i = 0
    while True:
        for event in reconcile([docs[i % 2]], handler_map, ctx, Options()):
            assert event.status != "failed", event
        if i == 0:
            os.write(ready_fd, b"r")  # warmed up: every later moment is inside a pass
        i += 1


def _writer_forever(target: Path, state: Path, ready_fd: int) -> None:
    """Two contents of the same owned key: every pass rewrites the whole file."""
    _alternate([DaemonConfig(kind="DaemonConfig", name="d", path=str(target), settings={
        "labels": [f"v={v}", *(f"{n}" + "x" * 2000 for n in range(50))]}) for v in ("a", "b")],
        state, ready_fd)


Writer = Callable[[Path, Path, int], None]


def _spawn_writer(target: Path, state: Path, writer: Writer | None = None) -> int:
    """Fork a writer; return once it finished its first pass (later moments are mid-pass)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        try:
            os.close(read_end)
            (writer or _writer_forever)(target, state, write_end)
        finally:
            os._exit(1)
    os.close(write_end)
    assert os.read(read_end, 1) == b"r"
    os.close(read_end)
    return pid


def test_sigkill_never_tears_the_file(tmp_path: Path) -> None:
    target = tmp_path / "daemon.json"
    target.write_text('{"debug": true}\n')
    rng = random.Random(20261123)
    seen: set[str] = set()
    mid_write = 0
    for _ in range(KILLS):
        pid = _spawn_writer(target, tmp_path / "state")
        time.sleep(rng.uniform(0, 0.06))  # spans several passes
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        mid_write += any(".pyprov-tmp." in p.name for p in tmp_path.rglob("*"))
        data = json.loads(target.read_text())  # raises on a torn file
        assert data["debug"] is True  # the foreign key survived every write
        if "labels" in data:
            assert len(data["labels"]) == 51  # complete, not a prefix
            seen.add(data["labels"][0])
    assert seen == {"v=a", "v=b"}  # kills landed while both contents were being written
    assert mid_write > 0  # some kills hit between temp-file creation and rename
    temps = [p for p in tmp_path.iterdir() if ".pyprov-tmp." in p.name]
    assert len(temps) <= 1  # each write removes dead writers' temps; at most the last kill's


def test_stale_temp_of_dead_writer_is_removed(tmp_path: Path) -> None:
    target = tmp_path / "daemon.json"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = temp_path(target, dead.pid)
    stale.write_text("{")
    live = temp_path(target, os.getppid())
    live.write_text("{")
    foreign_fresh = target.with_name(".daemon.json.pyprov-tmp.1-1.abcd")  # other pid ns
    foreign_fresh.write_text("{")
    foreign_old = target.with_name(".daemon.json.pyprov-tmp.1-2.abcd")
    foreign_old.write_text("{")
    os.utime(foreign_old, (time.time() - 7200, time.time() - 7200))
    atomic_write(target, b"{}\n")
    assert not stale.exists()
    assert live.exists()  # a live writer's temp is never removed
    assert foreign_fresh.exists()  # pids of another namespace mean nothing here
    assert not foreign_old.exists()
    assert target.read_bytes() == b"{}\n"


REPAIR_KILLS = 100


def _owning_docs(target: Path) -> list[DaemonConfig]:
    """Two manifests that own different keys: switching drops 'labels' or adds it back."""
    return [DaemonConfig(kind="DaemonConfig", name="d", path=str(target),
                         settings={"debug": False, "labels": ["x" * 1000] * 1}),
            DaemonConfig(kind="DaemonConfig", name="d", path=str(target),
                         settings={"debug": True})]


def _switching_writer(target: Path, state: Path, ready_fd: int) -> None:
    _alternate(_owning_docs(target), state, ready_fd)


def test_a_pass_after_any_kill_converges_keys_and_record(tmp_path: Path) -> None:
    """Kill a pass that adds or drops an owned key anywhere; the next pass repairs all."""
    target = tmp_path / "daemon.json"
    target.write_text('{"mtu": 1400}\n')  # a foreign key nobody owns
    state = tmp_path / "state"
    rng = random.Random(7)
    docs = _owning_docs(target)
    for _ in range(REPAIR_KILLS):
        pid = _spawn_writer(target, state, _switching_writer)
        time.sleep(rng.uniform(0, 0.04))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

        wanted = docs[rng.randrange(2)]
        (event,) = reconcile([wanted], handlers(), HostContext("localhost", StateDir(state)),
                             Options())
        assert event.status != "failed", event
        assert json.loads(target.read_text()) == {"mtu": 1400, **wanted.settings}
        record = json.loads(next((state / "resources").rglob("*.json")).read_text())
        assert record["owned_keys"] == list(wanted.settings)
        again = list(reconcile([wanted], handlers(), HostContext("localhost", StateDir(state)),
                               Options()))
        assert [e.status for e in again] == ["ok"]  # converged in one pass
