"""Drift reports across passes (since when), the Prometheus textfile, and the fleet table."""

from __future__ import annotations

from agent.drift import build_report
from agent.loop.status import metrics_text, report_json
from agent.model import Event
from controller.drift import FleetDrift, HostDrift, render_text


def drifted(name: str) -> Event:
    return Event(host="h1", kind="DaemonConfig", name=name, changed=True, action="update",
                 summary=f"update {name}", changes=["registry-mirrors"])


def test_drift_is_dated_from_the_pass_that_first_saw_it() -> None:
    first = build_report("h1", "2026-01-01T00:00:00Z", 0.1, "sha256:a", [drifted("d")],
                         mode="report")
    second = build_report("h1", "2026-01-01T00:01:00Z", 0.1, "sha256:a",
                          [drifted("d"), drifted("e")], mode="report", previous=first)
    since = {e["name"]: e["since"] for e in second.drift}
    assert since == {"d": "2026-01-01T00:00:00Z", "e": "2026-01-01T00:01:00Z"}
    cleared = build_report("h1", "2026-01-01T00:02:00Z", 0.1, "sha256:a", [drifted("e")],
                           mode="report", previous=build_report(
                               "h1", "2026-01-01T00:01:30Z", 0.1, "sha256:a", [],
                               mode="report", previous=second))
    assert cleared.drift[0]["since"] == "2026-01-01T00:02:00Z"  # drift that came back


def test_an_enforcing_pass_reports_repairs_not_drift() -> None:
    report = build_report("h1", "2026-01-01T00:00:00Z", 0.2, "sha256:a", [drifted("d")],
                          mode="enforce")
    assert report.drift == []
    assert [e["name"] for e in report.repaired] == ["d"]
    assert report.exit_code == 2
    assert "repaired 1 of 1" in report.summary()


def test_the_textfile_is_prometheus_exposition_format() -> None:
    report = build_report("h1", "2026-01-01T00:00:00Z", 0.25, "sha256:a", [drifted("d")],
                          mode="report")
    text = metrics_text(True, report, 0)
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines()
                   if not line.startswith("#"))
    assert samples['pyprov_agent_resources_drifted{mode="report"}'] == "1"
    assert float(samples['pyprov_agent_last_pass_timestamp_seconds{mode="report"}']) == 1767225600
    assert float(samples['pyprov_agent_last_pass_duration_seconds{mode="report"}']) == 0.25
    for name in {key.split("{")[0] for key in samples}:
        assert f"# TYPE {name} gauge" in text


def test_the_fleet_table_and_its_exit_code() -> None:
    report = build_report("h2", "2026-01-01T00:00:00.123456789Z", 0.1, "sha256:a",
                          [drifted("docker")], mode="check")
    fleet = FleetDrift([HostDrift("h1", error="no drift report yet"),
                        HostDrift("h2", report=report_json(report),
                                  agent={"generation": "sha256:b"}),
                        HostDrift("h3", error="timed out", unreachable=True)])
    assert fleet.exit_code == 6
    rows = [line.split(None, 2) for line in render_text(fleet).splitlines()[1:4]]
    assert rows[0][:2] == ["h1", "-"]
    assert rows[1][:2] == ["h2", "DaemonConfig/docker"]
    assert "stale: the desired state changed since" in rows[1][2]
    assert rows[1][2].endswith("2026-01-01T00:00:00Z")
    assert rows[2][2].startswith("UNREACHABLE")
    assert FleetDrift([HostDrift("h2", report=report_json(report))]).exit_code == 2
