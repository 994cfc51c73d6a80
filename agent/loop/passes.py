"""One pass over the stored desired state: the same reconcile as ``agent apply``.

``enforce`` repairs drift (exclusive host lock), ``report`` and ``check`` only plan it
(shared lock: they change nothing, so they may run beside each other). Every pass
leaves a drift report (see agent/drift.py); a refused desired state is a failure of
the pass, reported as such, while the last good one is reconciled.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from agent.drift import LAST_REPORT, DriftReport, build_report, read_report, store_report
from agent.loop.stored import load
from agent.model import DaemonConfig, DesiredState, Event
from agent.reconcile.actions import Options
from agent.reconcile.engine import reconcile
from agent.reconcile.handler import DAEMON_JSON, HostContext
from agent.reconcile.lock import host_lock
from agent.resources import handlers
from agent.state import StateDir
from agent.textfmt import now_rfc3339

MODES = ("enforce", "report")  # a loop's; ``check`` is agent check's own


def host_context(desired: DesiredState, state: StateDir) -> HostContext:
    daemon_json = next((Path(doc.path) for doc in desired.documents
                        if isinstance(doc, DaemonConfig)), DAEMON_JSON)
    return HostContext(host=desired.host, state=state, daemon_json=daemon_json)


def say_waiting(holder: str) -> None:
    print(f"pyprov: waiting for {holder} to finish", file=sys.stderr, flush=True)


def run_pass(state: StateDir, mode: str, lock_timeout: float, keep: int,
             on_wait: Callable[[str], None] | None = say_waiting) -> DriftReport:
    """Reconcile (enforce) or compare (report, check) and store the report.

    Raises NoDesiredState or UnusableDesiredState when there is nothing to pass over."""
    loaded = load(state)
    desired = loaded.desired
    started, clock = now_rfc3339(), time.monotonic()
    enforce = mode == "enforce"
    with host_lock(state.lock, lock_timeout, on_wait=on_wait, shared=not enforce):
        events = list(reconcile(list(desired.documents), handlers(),
                                host_context(desired, state), Options(check=not enforce)))
    if loaded.refused:
        events.append(Event(host=desired.host, kind="Host", name="desired-state",
                            failed=True, summary="stored desired state refused",
                            error=f"{loaded.refused}; the last good one is in force"))
    report = build_report(desired.host, started, time.monotonic() - clock, loaded.generation,
                          events, mode=mode, previous=read_report(state.reports / LAST_REPORT))
    # agent check (cron) keeps every report; a loop keeps those that found something.
    store_report(state.reports, report, keep, history=mode == "check" or report.noteworthy)
    return report
