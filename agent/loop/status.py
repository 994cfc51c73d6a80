"""What ``agent status`` shows, and the Prometheus textfile.

The live agent answers with its own view (mode, interval, next pass, counters); without
one, the status comes from the files a past pass or ``agent check`` left. Either way
the last pass is the last report (STATE/reports/last.json).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.drift import LAST_REPORT, DriftReport, read_report
from agent.fsutil.atomic import atomic_write
from agent.loop.stored import stored_generation
from agent.state import StateDir
from agent.textfmt import duration, parse_time


@dataclass
class LoopStatus:
    running: bool
    state_dir: str
    pid: int | None = None
    mode: str | None = None             # enforce | report; None: serving only, no loop
    interval: float | None = None
    started_at: str | None = None
    generation: str | None = None       # of the stored desired state in force
    desired_error: str | None = None    # why the stored desired state is not used
    next_pass_at: str | None = None
    next_pass_in_s: float | None = None
    passes: int = 0
    failures_in_a_row: int = 0
    wait_s: float | None = None         # the wait chosen after the last pass (or backoff)
    served: dict[str, int] = field(default_factory=dict)  # requests answered, by command
    last_pass: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        if not self.running:
            lines = ["agent:      not running"]
        elif self.mode is None:
            lines = [f"agent:      serving (pid {self.pid}, since {self.started_at}), no loop"]
        else:
            lines = [f"agent:      running (pid {self.pid}, since {self.started_at}), mode "
                     f"{self.mode}, a pass every {duration(self.interval or 0)}"]
        if self.generation:
            lines.append(f"desired:    {self.generation[:19]}")
        if self.desired_error:
            lines.append(f"refused:    {self.desired_error}")
        last = self.last_pass
        if last:
            lines.append(f"last pass:  {last['started_at']} ({last['mode']}, "
                         f"{last['duration_s']:.2f} s): {last['summary']}")
            lines.extend(f"  drift:    {e['kind']}/{e['name']}: {e['summary']} (since "
                         f"{e.get('since', '?')})" for e in last.get("drift", []))
            lines.extend(f"  failed:   {e['kind']}/{e['name']}: {e.get('error', '')}"
                         for e in last.get("failed", []))
        else:
            lines.append("last pass:  none yet")
        if self.next_pass_at:
            lines.append(f"next pass:  {self.next_pass_at} (in "
                         f"{duration(max(self.next_pass_in_s or 0, 0))})"
                         + (f", after {self.failures_in_a_row} failed"
                            if self.failures_in_a_row else ""))
        return "\n".join(lines) + "\n"


def from_files(state: StateDir) -> LoopStatus:
    """The status of a host where no agent runs: what the last pass or check left."""
    status = LoopStatus(running=False, state_dir=str(state.root),
                        generation=stored_generation(state))
    report = read_report(state.reports / LAST_REPORT)
    status.last_pass = report_json(report)
    return status


def report_json(report: DriftReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {**asdict(report), "exit": report.exit_code, "summary": report.summary()}


# node_exporter's textfile collector reads *.prom files: gauges named by what they hold.
_METRICS = (
    ("pyprov_agent_up", "1 while the agent loop runs"),
    ("pyprov_agent_last_pass_timestamp_seconds", "when the last pass started (unix time)"),
    ("pyprov_agent_last_pass_duration_seconds", "how long the last pass took"),
    ("pyprov_agent_last_pass_success", "1 if the last pass had no failure"),
    ("pyprov_agent_resources", "resources in the desired state at the last pass"),
    ("pyprov_agent_resources_drifted", "resources that differ (report and check modes)"),
    ("pyprov_agent_resources_changed", "resources the last pass repaired (enforce mode)"),
    ("pyprov_agent_resources_failed", "resources the last pass failed on"),
    ("pyprov_agent_passes_failed_in_a_row", "consecutive failed passes (backoff)"),
)


def metrics_text(up: bool, report: DriftReport | None, failures_in_a_row: int) -> str:
    values: dict[str, float] = {"pyprov_agent_up": int(up),
                                "pyprov_agent_passes_failed_in_a_row": failures_in_a_row}
    if report is not None:
        values.update({
            "pyprov_agent_last_pass_timestamp_seconds": _unix(report.started_at),
            "pyprov_agent_last_pass_duration_seconds": report.duration_s,
            "pyprov_agent_last_pass_success": int(not report.failed),
            "pyprov_agent_resources": report.resources,
            "pyprov_agent_resources_drifted": len(report.drift),
            "pyprov_agent_resources_changed": len(report.repaired),
            "pyprov_agent_resources_failed": len(report.failed),
        })
    mode = report.mode if report is not None else "none"
    out = []
    for name, help_text in _METRICS:
        if name in values:
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge",
                    f'{name}{{mode="{mode}"}} {values[name]:.15g}']
    return "\n".join(out) + "\n"


def _unix(stamp: str) -> float:
    when = parse_time(stamp)
    return round(when.timestamp(), 3) if when else 0.0


def write_metrics(path: Path, text: str) -> None:
    """Atomic: the collector must never read half a file. 0644: node_exporter reads it."""
    atomic_write(path, text.encode(), mode=0o644)
