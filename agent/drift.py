"""``pyprov agent check``: compare the host with the desired state stored by the last apply,
change nothing, and leave a report for cron and for the controller's drift table.

    STATE/reports/check-<UTC time>.json   one per run, newest ``keep`` kept (0600)
    STATE/reports/last.json               the newest, at a stable name

A report says when, how long, which desired state (its sha256, the "generation"), and per
resource that differs: kind, name, planned action, summary and what changed; failures
with their error. Events carry no secret (environment *keys* only), so neither does the
report. Exit codes are Puppet's: 0 in sync, 2 drift, 4 failure (6 both). The one-line
summary is what cron mails.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agent.fsutil.atomic import atomic_write
from agent.model import Event, exit_code

REPORT_PREFIX = "check-"
LAST_REPORT = "last.json"
DEFAULT_KEEP = 100


@dataclass
class DriftReport:
    host: str
    started_at: str
    duration_s: float
    generation: str                 # sha256 of the stored desired state checked against
    resources: int
    drift: list[dict[str, object]] = field(default_factory=list)
    failed: list[dict[str, object]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return exit_code(bool(self.drift), bool(self.failed))

    def summary(self) -> str:
        if self.failed:
            names = ", ".join(f"{e['kind']}/{e['name']}" for e in self.failed)
            head = f"pyprov check on {self.host}: {len(self.failed)} failed ({names})"
            return head + (f"; drift on {len(self.drift)}" if self.drift else "")
        if not self.drift:
            return f"pyprov check on {self.host}: in sync ({self.resources} resources)"
        names = ", ".join(f"{e['kind']}/{e['name']} ({e['summary']})" for e in self.drift)
        return (f"pyprov check on {self.host}: drift on {len(self.drift)} of "
                f"{self.resources} resources: {names}")

    def to_json(self) -> bytes:
        body = {**asdict(self), "exit": self.exit_code, "in_sync": not self.drift,
                "summary": self.summary()}
        return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()


def generation(desired_bytes: bytes) -> str:
    return "sha256:" + hashlib.sha256(desired_bytes).hexdigest()


def build_report(host: str, started_at: str, duration: float, generation_id: str,
                 events: Iterable[Event]) -> DriftReport:
    report = DriftReport(host, started_at, round(duration, 3), generation_id, 0)
    for event in events:
        report.resources += 1
        entry: dict[str, object] = {"kind": event.kind, "name": event.name,
                                    "action": event.action, "summary": event.summary,
                                    "changes": list(event.changes)}
        if event.failed:
            report.failed.append({**entry, "error": event.error})
        elif event.changed:
            report.drift.append(entry)
    return report


def store_report(reports: Path, report: DriftReport, keep: int = DEFAULT_KEEP) -> Path:
    """Write the report (and last.json) atomically, 0600; keep the newest ``keep``."""
    stamp = report.started_at.replace(":", "").replace("-", "")
    path = reports / f"{REPORT_PREFIX}{stamp}.json"
    data = report.to_json()
    atomic_write(path, data, mode=0o600, dir_mode=0o700)
    atomic_write(reports / LAST_REPORT, data, mode=0o600, dir_mode=0o700)
    stored = sorted(p for p in reports.glob(f"{REPORT_PREFIX}*.json"))
    for old in stored[:max(0, len(stored) - max(keep, 1))]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()
    return path
