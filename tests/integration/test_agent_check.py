"""``pyprov agent check``: drift against the desired state the last apply stored, for cron.
Nothing changes; a report is written (0600, last.json, bounded); exit 0 in sync, 2 drift,
4 when there is nothing (or nothing usable) to check against."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.integration.test_agent_cli import agent, desired


def test_in_sync_then_drift_reported_not_repaired(tmp_path: Path) -> None:
    target = tmp_path / "daemon.json"
    state = tmp_path / "state"
    assert agent(["apply"], json.dumps(desired(target)), state).returncode == 2
    clean = agent(["check"], "", state)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.strip() == "pyprov check on web1: in sync (1 resources)"
    target.write_text('{"debug": false}\n')  # a hand edit
    drifted = agent(["check", "--output", "json"], "", state)
    assert drifted.returncode == 2, drifted.stderr
    report = json.loads(drifted.stdout)
    assert report["in_sync"] is False
    assert report["exit"] == 2
    assert [(d["kind"], d["name"]) for d in report["drift"]] == [("DaemonConfig", "d")]
    assert report["generation"].startswith("sha256:")
    assert json.loads(target.read_text()) == {"debug": False}  # reported, not repaired
    reports = state / "reports"
    last = json.loads((reports / "last.json").read_text())
    assert last == report
    for path in reports.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(list(reports.glob("check-*.json"))) == 2


def test_reports_are_bounded(tmp_path: Path) -> None:
    target = tmp_path / "daemon.json"
    state = tmp_path / "state"
    agent(["apply"], json.dumps(desired(target)), state)
    for _ in range(4):
        assert agent(["check", "--keep", "2"], "", state).returncode == 0
    assert len(list((state / "reports").glob("check-*.json"))) == 2


def test_nothing_or_a_corrupt_desired_state_is_a_clear_failure(tmp_path: Path) -> None:
    state = tmp_path / "state"
    never = agent(["check"], "", state)
    assert never.returncode == 4
    assert "run pyprov apply first" in never.stderr
    assert not (state / "reports").exists()
    target = tmp_path / "daemon.json"
    agent(["apply"], json.dumps(desired(target)), state)
    (state / "desired.json").write_text("{not json")
    corrupt = agent(["check"], "", state)
    assert corrupt.returncode == 4
    assert "refused" in corrupt.stderr
    assert "the last good one is in force" in corrupt.stderr  # and was checked against
    assert json.loads((state / "reports" / "last.json").read_text())["resources"] == 1
    (state / "desired.good.json").unlink()
    nothing_good = agent(["check"], "", state)
    assert nothing_good.returncode == 4
    assert "no good one was kept" in nothing_good.stderr
