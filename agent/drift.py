"""Drift reports: what a pass over the stored desired state found, for cron, ``agent
status`` and the controller's drift table.

    STATE/reports/check-<UTC time>.json   one per ``agent check``, and per loop pass that
                                          found something; newest ``keep`` kept (0600)
    STATE/reports/last.json               the newest, at a stable name

A report says when, how long, in which mode (``check``: ``agent check``; ``report`` and
``enforce``: a pass of the loop), which desired state (its sha256, the "generation"), and
per resource that differs: kind, name, planned action, summary, what changed and since
when (carried over from the previous report while the drift lasts); what an enforcing
pass repaired; failures with their error. Events carry no secret (environment *keys*
only), so neither does the report. Exit codes are Puppet's: 0 in sync, 2 drift (or
repaired), 4 failure (6 both). The one-line summary is what cron mails.
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
    mode: str = "check"             # check | report | enforce
    drift: list[dict[str, object]] = field(default_factory=list)
    repaired: list[dict[str, object]] = field(default_factory=list)
    failed: list[dict[str, object]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return exit_code(bool(self.drift or self.repaired), bool(self.failed))

    @property
    def noteworthy(self) -> bool:
        """Worth a timestamped report even from a loop pass (in sync ones only update
        last.json: a pass every 30 s must not flood the history)."""
        return bool(self.drift or self.repaired or self.failed)

    def summary(self) -> str:
        if self.failed:
            names = ", ".join(f"{e['kind']}/{e['name']}" for e in self.failed)
            head = f"pyprov {self.mode} on {self.host}: {len(self.failed)} failed ({names})"
            return head + (f"; drift on {len(self.drift)}" if self.drift else "")
        if self.repaired:
            names = ", ".join(f"{e['kind']}/{e['name']}" for e in self.repaired)
            return (f"pyprov {self.mode} on {self.host}: repaired {len(self.repaired)} of "
                    f"{self.resources} resources: {names}")
        if not self.drift:
            return f"pyprov {self.mode} on {self.host}: in sync ({self.resources} resources)"
        names = ", ".join(f"{e['kind']}/{e['name']} ({e['summary']})" for e in self.drift)
        return (f"pyprov {self.mode} on {self.host}: drift on {len(self.drift)} of "
                f"{self.resources} resources: {names}")

    @classmethod
    def from_json(cls, data: dict[str, object]) -> DriftReport:
        """A report from its JSON form (the computed fields are dropped)."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__  # type: ignore[arg-type]
                      if name in data})

    def to_json(self) -> bytes:
        body = {**asdict(self), "exit": self.exit_code, "in_sync": not self.drift,
                "summary": self.summary()}
        return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()


def generation(desired_bytes: bytes) -> str:
    return "sha256:" + hashlib.sha256(desired_bytes).hexdigest()


def build_report(host: str, started_at: str, duration: float, generation_id: str,
                 events: Iterable[Event], *, mode: str = "check",
                 previous: DriftReport | None = None) -> DriftReport:
    """``previous`` (the last report) dates each drift and failure from when it began."""
    report = DriftReport(host, started_at, round(duration, 3), generation_id, 0, mode)
    before = _since(previous)
    for event in events:
        report.resources += event.kind != "Host"  # a Host event is about the pass itself
        entry: dict[str, object] = {"kind": event.kind, "name": event.name,
                                    "action": event.action, "summary": event.summary,
                                    "changes": list(event.changes)}
        since = before.get((event.kind, event.name), started_at)
        if event.failed:
            report.failed.append({**entry, "error": event.error, "since": since})
        elif event.changed and mode == "enforce":
            report.repaired.append(entry)
        elif event.changed:
            report.drift.append({**entry, "since": since})
    return report


def _since(previous: DriftReport | None) -> dict[tuple[object, object], str]:
    if previous is None:
        return {}
    return {(e["kind"], e["name"]): str(e.get("since") or previous.started_at)
            for e in [*previous.drift, *previous.failed]}


def read_report(path: Path) -> DriftReport | None:
    """A stored report (None when missing or unreadable: reports are advisory)."""
    try:
        return DriftReport.from_json(json.loads(path.read_bytes()))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def store_report(reports: Path, report: DriftReport, keep: int = DEFAULT_KEEP,
                 history: bool = True) -> Path:
    """Write last.json and, with ``history``, a timestamped copy, atomically, 0600; keep the
    newest ``keep`` copies."""
    stamp = report.started_at.replace(":", "").replace("-", "")
    path = reports / f"{REPORT_PREFIX}{stamp}.json"
    data = report.to_json()
    if history:
        atomic_write(path, data, mode=0o600, dir_mode=0o700)
    atomic_write(reports / LAST_REPORT, data, mode=0o600, dir_mode=0o700)
    stored = sorted(p for p in reports.glob(f"{REPORT_PREFIX}*.json"))
    for old in stored[:max(0, len(stored) - max(keep, 1))]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()
    return path
