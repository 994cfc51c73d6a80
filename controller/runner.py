"""Runs the agent on each host through its transport and collects the events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from agent.model import DesiredState, Document, Event
from controller.errors import TransportError
from controller.report.recap import Recap
from controller.report.render import Renderer
from controller.transports.base import Transport


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


def _parse_event(host: str, line: str) -> Event:
    try:
        return Event.model_validate_json(line)
    except ValidationError:
        return Event(host=host, kind="Host", name=host, failed=True,
                     summary="protocol", error=f"unexpected agent output: {line[:200]!r}")


def run_host(transport: Transport, documents: Sequence[Document], flags: AgentFlags,
             recap: Recap, renderer: Renderer) -> None:
    """One host: send its desired state, stream its events into the recap."""
    host = transport.host
    tally = recap.host(host)
    desired = DesiredState(host=host, documents=list(documents))
    payload = desired.model_dump_json().encode()
    try:
        with transport.run_agent(flags.args(), payload) as session:
            seen = 0
            for line in session.lines():
                if not line.strip():
                    continue
                event = _parse_event(host, line)
                tally.add(event)
                renderer.event(event)
                seen += 1
            code = session.wait()
    except TransportError as exc:
        tally.unreachable += 1
        renderer.event(Event(host=host, kind="Host", name=host, failed=True,
                             summary="unreachable", error=exc.reason))
        return
    problem = _incomplete(code, seen, len(documents), tally.failed > 0)
    if problem:
        event = Event(host=host, kind="Host", name=host, failed=True, summary="agent",
                      error=problem)
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


def desired_state_json(host: str, documents: Sequence[Document]) -> str:
    """The exact document a host's agent receives (``pyprov render``)."""
    desired = DesiredState(host=host, documents=list(documents))
    return json.dumps(desired.model_dump(mode="json"), indent=2)
