"""``pyprov drift``: every host's latest drift report, as one fleet-wide table.

Each host is asked ``agent status --output json`` (its live agent answers over the SSH
connection, else a process reads the files its last pass or cron check left); with
``--now`` it runs ``agent check --output json`` first. A report is stale when the
host's stored desired state changed after it was made. Exit codes, Puppet's: 0 all in
sync, 2 drift somewhere, 4 a host failed, could not be reached or has no report yet,
6 both.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.model.constants import EXIT_FAILED, exit_code
from controller.errors import TransportError
from controller.fanout import fan_out
from controller.transports.base import Transport


@dataclass
class HostDrift:
    host: str
    report: dict[str, Any] | None = None      # the latest drift report (agent/drift.py)
    agent: dict[str, Any] | None = None       # the agent's status, when it was asked
    error: str | None = None
    unreachable: bool = False

    @property
    def stale(self) -> bool:
        current = (self.agent or {}).get("generation")
        return bool(self.report and current and current != self.report.get("generation"))

    @property
    def state(self) -> str:
        if self.unreachable:
            return "unreachable"
        if self.error or self.report is None:
            return "failed" if self.error else "unknown"
        if self.report.get("failed"):
            return "failed"
        return "drift" if self.report.get("drift") else "in_sync"

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state, "stale": self.stale, "error": self.error,
                "report": self.report, "agent": self.agent}


@dataclass
class FleetDrift:
    hosts: list[HostDrift] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        drift = any(h.state == "drift" or (h.report or {}).get("drift") for h in self.hosts)
        failed = any(h.state in ("failed", "unreachable", "unknown") for h in self.hosts)
        return exit_code(drift, failed)


def _agent_json(transport: Transport, args: list[str]) -> tuple[int, dict[str, Any]]:
    with transport.run_agent(args, b"") as session:
        text = "\n".join(session.lines())
        code = session.wait()
        stderr = session.stderr_text()
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        why = stderr.strip().splitlines()[-1:] or [f"exit {code}, no JSON answer"]
        raise TransportError(transport.host, f"agent {args[0]}: {why[0]}")
    return code, answer


def gather_host(transport: Transport, now: bool, state_dir: str | None) -> HostDrift:
    where = ["--state-dir", state_dir] if state_dir else []
    result = HostDrift(transport.host)
    try:
        if now:
            code, report = _agent_json(transport, ["check", "--output", "json", *where])
            if "generation" in report:
                result.report = report
            elif code & EXIT_FAILED:
                result.error = "the check failed"
        _, result.agent = _agent_json(transport, ["status", "--output", "json", *where])
        if result.report is None:
            result.report = result.agent.get("last_pass")
    except TransportError as exc:
        result.error, result.unreachable = exc.reason, exc.unreachable
    if result.report is None and result.error is None:
        result.error = ("no drift report yet: no pass or check ran on this host (wait for "
                        "its cron entry or loop, or run pyprov drift --now)")
    return result


def gather(hosts: Sequence[str], transport_for: Callable[[str], Transport], *, now: bool,
           state_dir: str | None, forks: int) -> FleetDrift:
    found: dict[str, HostDrift] = {}
    lock = threading.Lock()

    def one(host: str) -> None:
        transport = transport_for(host)
        try:
            drift = gather_host(transport, now, state_dir)
        finally:
            transport.close()
        with lock:
            found[host] = drift

    fan_out(hosts, one, forks)
    return FleetDrift([found[host] for host in hosts])


def render_json(fleet: FleetDrift) -> str:
    return json.dumps({"hosts": {h.host: h.as_json() for h in fleet.hosts},
                       "exit": fleet.exit_code}, indent=2)


def _when(stamp: object) -> str:
    """RFC 3339 to the second: a table needs no nanoseconds."""
    text = str(stamp)
    return text[:19] + "Z" if len(text) > 19 and text[10:11] == "T" else text


def _rows(drift: HostDrift) -> list[tuple[str, str, str, str]]:
    report = drift.report or {}
    stale = " (stale: the desired state changed since)" if drift.stale else ""
    if drift.state == "unreachable":
        return [(drift.host, "-", f"UNREACHABLE: {drift.error}", "-")]
    if report.get("started_at") is None:
        return [(drift.host, "-", f"FAILED: {drift.error}", "-")]
    rows = []
    for entry in report.get("drift", []):
        summary = str(entry.get("summary", ""))
        changes = [str(c) for c in entry.get("changes", []) if str(c) not in summary]
        rows.append((drift.host, f"{entry['kind']}/{entry['name']}",
                     summary + (f" [{', '.join(changes)}]" if changes else "") + stale,
                     _when(entry.get("since", report["started_at"]))))
    for entry in report.get("failed", []):
        rows.append((drift.host, f"{entry['kind']}/{entry['name']}",
                     f"FAILED: {entry.get('error', '')}",
                     _when(entry.get("since", report["started_at"]))))
    if not rows:
        repaired = report.get("repaired") or []
        note = f", repaired {len(repaired)} at the last pass" if repaired else ""
        rows.append((drift.host, "-", f"in sync ({report.get('resources', 0)} resources"
                     f"{note}){stale}", f"checked {_when(report['started_at'])}"))
    if drift.error:
        rows.append((drift.host, "-", f"FAILED: {drift.error}", "-"))
    return rows


def render_text(fleet: FleetDrift) -> str:
    rows = [("HOST", "RESOURCE", "WHAT DIFFERS", "SINCE")]
    for drift in fleet.hosts:
        rows.extend(_rows(drift))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join([*(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])), row[3]])
             .rstrip() for row in rows]
    counts = {state: sum(h.state == state for h in fleet.hosts)
              for state in ("in_sync", "drift", "failed", "unknown", "unreachable")}
    summary = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in counts.items() if n)
    return "\n".join([*lines, "", f"{len(fleet.hosts)} hosts: {summary}"]) + "\n"
