"""Monitors forked by the zygote run containers, and outlive the zygote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from agent.runtime.zygote import request_start
from tests.conftest import REPO
from tests.waiting import wait_for


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_monitors_outlive_the_zygote_and_stop_cleanly(tmp_path: Path) -> None:
    sock = str(tmp_path / "zygote.sock")
    zygote = subprocess.Popen([sys.executable, "-I", "-m", "agent.runtime.zygote", sock],
                              cwd=REPO)
    states = [tmp_path / f"c{i}.state" for i in range(3)]
    try:
        wait_for(lambda: Path(sock).exists())
        assert oct(Path(sock).stat().st_mode & 0o777) == "0o600"
        for index, state in enumerate(states):
            request_start(sock, {"argv": ["/bin/sh", "-c", f"echo c{index}; exec sleep 30"],
                                 "env": ["PATH=/bin:/usr/bin"], "cwd": "/",
                                 "log": str(tmp_path / f"c{index}.log"), "state": str(state),
                                 "restart": "always"})
        wait_for(lambda: all(s.exists() and json.loads(s.read_text()).get("status") == "running"
                             for s in states))
    finally:
        zygote.kill()  # the zygote goes; the containers must not
        zygote.wait()
    recorded = [json.loads(s.read_text()) for s in states]
    assert all(running(r["pid"]) and running(r["monitor_pid"]) for r in recorded)
    wait_for(lambda: all(b"c" in (tmp_path / f"c{i}.log").read_bytes() for i in range(3)))
    for record in recorded:
        os.kill(record["monitor_pid"], signal.SIGTERM)
    wait_for(lambda: all(json.loads(s.read_text())["status"] == "stopped" for s in states))
    wait_for(lambda: not any(running(r["pid"]) or running(r["monitor_pid"])
                             for r in recorded))
