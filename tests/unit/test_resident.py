"""The resident agent's stop decides from /proc: a zombie (exited, not yet reaped by a
subreaper) has stopped; a running process has not."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from agent.runtime.procs import alive as _alive


def test_a_zombie_counts_as_stopped_a_running_process_does_not() -> None:
    running = subprocess.Popen(["sleep", "30"])
    exited = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while _alive(exited.pid) and time.monotonic() < deadline:
            time.sleep(0.01)  # exits, and stays a zombie: nobody has waited for it
        assert Path(f"/proc/{exited.pid}").exists()
        assert not _alive(exited.pid)
        assert _alive(running.pid)
    finally:
        running.kill()
        running.wait()
        exited.wait()
    assert not _alive(running.pid)
