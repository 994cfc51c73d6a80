"""The monitor with real processes: json-file logs, exit codes, restart policies with
doubling delays, stop with the image's signal then SIGKILL."""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from agent.runtime.monitor import JsonFileLog, Monitor, MonitorConfig, should_restart


def config(tmp_path: Path, script: str, **fields: object) -> MonitorConfig:
    return MonitorConfig(argv=["/bin/sh", "-c", script], env=["PATH=/bin:/usr/bin", "X=42"],
                         cwd=str(tmp_path), log=str(tmp_path / "log.json"),
                         state=str(tmp_path / "state.json"), **fields)  # type: ignore[arg-type]


def records(tmp_path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in (tmp_path / "log.json").read_text().splitlines()]


def state(tmp_path: Path) -> dict[str, object]:
    return json.loads((tmp_path / "state.json").read_text())  # type: ignore[no-any-return]


def test_output_is_docker_json_file_and_the_exit_code_is_recorded(tmp_path: Path) -> None:
    code = Monitor(config(tmp_path, 'echo "out $X"; echo err >&2; printf partial; exit 3')
                   ).run()
    assert code == 3
    logged = records(tmp_path)
    assert {(r["stream"], r["log"]) for r in logged} == {
        ("stdout", "out 42\n"), ("stderr", "err\n"), ("stdout", "partial")}
    assert all(r["time"].endswith("Z") for r in logged)
    final = state(tmp_path)
    assert (final["status"], final["exit_code"], final["pid"]) == ("exited", 3, None)
    assert final["restart_count"] == 0


def test_on_failure_n_restarts_n_times_with_doubling_delays(tmp_path: Path) -> None:
    stamps = tmp_path / "stamps"
    script = f"date +%s.%N >> {stamps}; exit 1"
    assert Monitor(config(tmp_path, script, restart="on-failure:3")).run() == 1
    times = [float(line) for line in stamps.read_text().split()]
    assert len(times) == 4  # the first run and 3 restarts
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.1
    assert gaps[1] >= 0.2
    assert gaps[2] >= 0.4
    assert state(tmp_path)["restart_count"] == 3


def test_on_failure_does_not_restart_a_clean_exit(tmp_path: Path) -> None:
    assert Monitor(config(tmp_path, "exit 0", restart="on-failure")).run() == 0
    assert state(tmp_path)["restart_count"] == 0


def _stop_soon(monitor: Monitor, after: float) -> threading.Timer:
    timer = threading.Timer(after, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    return timer


@pytest.mark.parametrize(("script", "stop_signal", "expected"), [
    ("trap 'exit 0' INT; while :; do sleep 0.05; done", signal.SIGINT, 0),  # its signal
    ("trap '' TERM; while :; do sleep 0.05; done", signal.SIGTERM, 128 + 9),  # ignored: KILL
])
def test_stop_sends_the_stop_signal_then_sigkill(tmp_path: Path, script: str,
                                                 stop_signal: int, expected: int) -> None:
    monitor = Monitor(config(tmp_path, script, restart="always", stop_signal=stop_signal,
                             stop_timeout=0.5))
    previous = signal.getsignal(signal.SIGTERM)
    timer = _stop_soon(monitor, 0.3)
    started = time.monotonic()
    try:
        assert monitor.run() == expected
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)
    assert time.monotonic() - started < 5
    assert state(tmp_path)["status"] == "stopped"  # `always`, yet a stop is a stop


def test_logs_rotate_by_size(tmp_path: Path) -> None:
    log = JsonFileLog(str(tmp_path / "c.log"), max_size=1000, max_files=3)
    for index in range(100):
        log.write("stdout", f"line {index:03d} ".encode() * 3 + b"\n")
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["c.log", "c.log.1", "c.log.2"]
    assert all(p.stat().st_size < 1200 for p in tmp_path.iterdir())
    newest = [json.loads(line)["log"] for line in (tmp_path / "c.log").read_text().splitlines()]
    assert newest[-1].startswith("line 099")


@pytest.mark.parametrize(("policy", "code", "restarts", "stopped", "expected"), [
    ("no", 1, 0, False, False), ("always", 0, 99, False, True),
    ("unless-stopped", 0, 0, True, False), ("on-failure", 1, 50, False, True),
    ("on-failure:2", 1, 2, False, False), ("on-failure:2", 0, 0, False, False),
])
def test_restart_rules_as_dockerd(policy: str, code: int, restarts: int, stopped: bool,
                                  expected: bool) -> None:
    assert should_restart(policy, code, restarts, stopped) is expected
