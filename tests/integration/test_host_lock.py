"""Two passes on one host never interleave: the second waits, or gives up with a clear error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.conftest import REPO, RunPyprov, write_manifest

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from agent.reconcile.lock import host_lock
    with host_lock(Path(sys.argv[1]), timeout=5):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def _hold(lock: Path, seconds: float) -> subprocess.Popen[bytes]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(seconds)],
                              cwd=REPO, stdout=subprocess.PIPE)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == b"held"
    return holder


def _manifests(tmp_path: Path) -> tuple[Path, Path]:
    target = tmp_path / "daemon.json"
    manifests = write_manifest(tmp_path / "m", "d.yml",
                               f"kind: DaemonConfig\nname: d\npath: {target}\n"
                               "settings:\n  debug: true\n").parent
    return target, manifests


def test_second_pass_gives_up_clearly(tmp_path: Path, pyprov: RunPyprov,
                                      state_dir: Path) -> None:
    target, manifests = _manifests(tmp_path)
    holder = _hold(state_dir / "agent.lock", 30)
    try:
        result = pyprov("apply", str(manifests), "--lock-timeout", "0.5")
    finally:
        holder.kill()
        holder.wait()
    assert result.code == 4
    assert f"pid {holder.pid}" in result.stdout
    assert "--lock-timeout" in result.stdout
    assert not target.exists()


def test_second_pass_waits_then_runs(tmp_path: Path, pyprov: RunPyprov, state_dir: Path) -> None:
    target, manifests = _manifests(tmp_path)
    holder = _hold(state_dir / "agent.lock", 1.5)
    started = time.monotonic()
    result = pyprov("apply", str(manifests))
    waited = time.monotonic() - started
    holder.wait()
    assert result.code == 2, result.stdout + result.stderr
    assert "waiting for pid" in result.stderr
    assert waited >= 1.0  # it really waited for the holder, it did not run alongside
    assert target.exists()


def test_killed_holder_leaves_no_stale_lock(tmp_path: Path, pyprov: RunPyprov,
                                            state_dir: Path) -> None:
    target, manifests = _manifests(tmp_path)
    holder = _hold(state_dir / "agent.lock", 60)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    result = pyprov("apply", str(manifests), "--lock-timeout", "1")
    assert result.code == 2, result.stdout
    assert target.exists()
