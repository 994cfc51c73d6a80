"""The systemd unit and cron entry bootstrap installs: valid for systemd itself, safe
schedules only, written once, removed when not asked."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.loop.install import (
    ServicePlan,
    SetupError,
    check_schedule,
    render_cron,
    render_unit,
    setup,
)
from agent.loop.runner import LoopSettings
from agent.state import StateDir


def plan(tmp_path: Path, agent: str = "loop", cron: str | None = "17 3 * * *") -> ServicePlan:
    return ServicePlan(agent=agent, loop=LoopSettings(mode="report", interval=45),
                       drift_cron=cron, drift_delay=120, state=StateDir(tmp_path / "state"),
                       python=sys.executable, systemd_dir=tmp_path / "systemd",
                       cron_dir=tmp_path / "cron.d")


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = tmp_path / "pyprov-agent.service"
    unit.write_text(render_unit(plan(tmp_path)))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    text = unit.read_text()
    assert "KillMode=process" in text  # the monitors outlive the agent
    assert f"ExecStart={sys.executable} -I -m agent run --mode report --interval 45 " in text
    broken = tmp_path / "broken.service"  # the check is real: systemd refuses a bad unit
    broken.write_text(text.replace(sys.executable, "/nonexistent/python"))
    assert subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True,
                          check=False).returncode != 0


def test_the_cron_entry_locks_delays_and_stays_quiet_in_sync(tmp_path: Path) -> None:
    line = render_cron(plan(tmp_path)).splitlines()[-1]
    assert line.startswith("17 3 * * * root flock -n ")
    assert "agent check --quiet --random-delay 120" in line
    assert "%" not in line  # cron turns % into a newline


@pytest.mark.parametrize("schedule", ["* * * * * root rm -rf /", "* * * *", "@sometimes",
                                      "* * * * *\n* * * * * root sh", "*/5 * * * ;", ""])
def test_a_schedule_that_is_not_one_is_refused(schedule: str) -> None:
    with pytest.raises(SetupError, match="is not a cron schedule"):
        check_schedule(schedule)


def test_nicknames_and_steps_are_schedules() -> None:
    assert check_schedule("@daily") == "@daily"
    assert check_schedule(" */15  2-4 * * mon-fri ") == "*/15 2-4 * * mon-fri"


def test_setup_writes_once_and_removes_what_is_no_longer_asked(tmp_path: Path) -> None:
    # Serving only (no loop): the agent is started detached here (no systemd as PID 1).
    out = io.StringIO()
    try:
        assert setup(plan(tmp_path, agent="serve"), "h1", out) == 2
        unit = tmp_path / "systemd" / "pyprov-agent.service"
        cron = tmp_path / "cron.d" / "pyprov-drift"
        assert unit.stat().st_mode & 0o777 == 0o644
        assert "agent serve --state-dir" in unit.read_text()
        written = unit.stat().st_mtime_ns, cron.stat().st_mtime_ns
        again = io.StringIO()
        assert setup(plan(tmp_path, agent="serve"), "h1", again) == 0
        assert (unit.stat().st_mtime_ns, cron.stat().st_mtime_ns) == written
        assert all(not json.loads(line).get("changed") for line in again.getvalue().splitlines())
    finally:
        removed = io.StringIO()
        assert setup(plan(tmp_path, agent="none", cron=None), "h1", removed) == 2
    assert not unit.exists()
    assert not cron.exists()
    assert "stopped the resident agent" in removed.getvalue()


def test_a_bad_schedule_changes_nothing(tmp_path: Path) -> None:
    out = io.StringIO()
    assert setup(plan(tmp_path, cron="every day"), "h1", out) == 4
    assert not (tmp_path / "systemd").exists()
    assert not (tmp_path / "state").exists()
    assert "is not a cron schedule" in out.getvalue()
