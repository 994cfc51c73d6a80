"""SIGKILL during repeated daemon.json writes: the file is always the old or the new one."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from agent.fsutil.atomic import atomic_write
from agent.model import DaemonConfig
from agent.reconcile.actions import Options
from agent.reconcile.engine import reconcile
from agent.reconcile.handler import HostContext
from agent.resources import handlers
from agent.state import StateDir

KILLS = 150


def _writer_forever(target: Path, state: Path, ready_fd: int) -> None:
    """Alternate two desired states through the real engine and handler (a forked child)."""
    docs = [DaemonConfig(kind="DaemonConfig", name="d", path=str(target),
                         settings={"labels": [f"v={v}", *(f"{n}" + "x" * 2000 for n in range(50))]})
            for v in ("a", "b")]
    ctx = HostContext("localhost", StateDir(state))
    handler_map = handlers()
    i = 0
    while True:
        for event in reconcile([docs[i % 2]], handler_map, ctx, Options()):
            assert event.status != "failed", event
        if i == 0:
            os.write(ready_fd, b"r")  # warmed up: every later moment is inside a pass
        i += 1


def _spawn_writer(target: Path, state: Path) -> int:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        try:
            os.close(read_end)
            _writer_forever(target, state, write_end)
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
    stale = tmp_path / f".daemon.json.pyprov-tmp.{dead.pid}.abcd"
    stale.write_text("{")
    live = tmp_path / f".daemon.json.pyprov-tmp.{os.getppid()}.abcd"
    live.write_text("{")
    atomic_write(target, b"{}\n")
    assert not stale.exists()
    assert live.exists()  # a live writer's temp is never removed
    assert target.read_bytes() == b"{}\n"
