"""Runs the agent on each host through its transport and collects the events.

Hosts run in parallel, at most ``forks`` at once; each host keeps one transport (one
SSH connection) for the whole run and receives its whole desired state in one agent run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from agent.model import DesiredState, Document, Event
from controller.errors import TransportError
from controller.fanout import fan_out
from controller.plays import HostState
from controller.report.recap import Recap
from controller.report.render import Renderer
from controller.transports.base import Transport

NOT_INSTALLED = 127  # the shell's "command not found"


@dataclass(frozen=True)
class AgentFlags:
    check: bool = False
    diff: bool = False
    force: bool = False
    state_dir: str | None = None
    lock_timeout: float | None = None
    verbose: int = 0
    log_format: str = "auto"

    def args(self) -> list[str]:
        args = ["apply"]
        args += ["--check"] * self.check + ["--diff"] * self.diff + ["--force"] * self.force
        if self.state_dir:
            args += ["--state-dir", self.state_dir]
        if self.lock_timeout is not None:
            args += ["--lock-timeout", str(self.lock_timeout)]
        return args + ["-v"] * self.verbose + ["--log-format", self.log_format]


class LockedRenderer:
    """Serializes a renderer: hosts report from several threads."""

    def __init__(self, inner: Renderer) -> None:
        self._inner, self._lock = inner, threading.Lock()

    def start(self, title: str, check: bool) -> None:
        with self._lock:
            self._inner.start(title, check)

    def event(self, event: Event) -> None:
        with self._lock:
            self._inner.event(event)

    def finish(self, recap: Recap) -> None:
        with self._lock:
            self._inner.finish(recap)


def _parse_event(host: str, line: str) -> Event:
    try:
        return Event.model_validate_json(line)
    except ValidationError:
        return Event(host=host, kind="Host", name=host, failed=True,
                     summary="protocol", error=f"unexpected agent output: {line[:200]!r}")


def _host_event(host: str, error: str) -> Event:
    return Event(host=host, kind="Host", name=host, failed=True, summary="agent", error=error)


def run_host(transport: Transport, documents: Sequence[Document], flags: AgentFlags,
             recap: Recap, renderer: Renderer) -> None:
    """One host: send its desired state, stream its events into the recap."""
    host = transport.host
    tally = recap.host(host)
    failures_before = tally.failed + tally.unreachable
    payload = DesiredState(host=host, documents=list(documents)).model_dump_json().encode()
    try:
        with transport.run_agent(flags.args(), payload) as session:
            seen = 0
            for line in session.lines():
                if line.strip():
                    event = _parse_event(host, line)
                    tally.add(event)
                    renderer.event(event)
                    seen += 1
            code = session.wait()
            stderr = session.stderr_text()
    except TransportError as exc:
        if exc.unreachable:
            tally.unreachable += 1
        else:
            tally.add(_host_event(host, exc.reason))
        renderer.event(Event(host=host, kind="Host", name=host, failed=True,
                             summary="UNREACHABLE" if exc.unreachable else "failed",
                             error=exc.reason))
        return
    problem = _incomplete(code, seen, len(documents), tally.failed > failures_before)
    if problem:
        if code == NOT_INSTALLED:
            problem = (f"the agent is not installed at {transport.agent_python} "
                       "(run `pyprov bootstrap`)")
        detail = stderr.strip().splitlines()[-1:] if stderr.strip() else []
        event = _host_event(host, problem + (f": {detail[0]}" if detail else ""))
        tally.add(event)
        renderer.event(event)


def _incomplete(code: int, seen: int, expected: int, reported_failure: bool) -> str | None:
    """An agent run that did not report on every resource is a failure, whatever its code."""
    if code not in (0, 2, 4, 6):
        return f"the agent exited with code {code} after {seen} of {expected} results"
    if code & 4 and not reported_failure:
        return f"the agent exited with code {code} and reported no failure"
    if seen < expected and not reported_failure:
        return f"the agent reported {seen} of {expected} results (exit code {code})"
    return None


def run_hosts(states: Sequence[HostState], *, title: str,
              transport_for: Callable[[str], Transport], flags: AgentFlags, recap: Recap,
              renderer: Renderer, forks: int) -> None:
    """Every host's desired state, in parallel (at most ``forks`` at once)."""
    locked = LockedRenderer(renderer)
    locked.start(title, flags.check)
    transports: dict[str, Transport] = {}
    for state in states:
        recap.host(state.host)  # the recap lists hosts in inventory order
        transports[state.host] = transport_for(state.host)

    def one(state: HostState) -> None:
        try:
            run_host(transports[state.host], state.documents, flags, recap, locked)
        finally:
            transports[state.host].close()

    fan_out(states, one, forks)


def desired_state_json(host: str, documents: Sequence[Document]) -> str:
    """The exact document a host's agent receives (``pyprov render``)."""
    return DesiredState(host=host, documents=list(documents)).model_dump_json(indent=2)
