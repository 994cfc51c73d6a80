"""Runs one pass over a host's desired state and yields one event per resource."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import structlog

from agent.errors import PyprovError
from agent.model import Event
from agent.model.protocol import Status
from agent.reconcile.actions import Action, Options
from agent.reconcile.handler import KIND_ORDER, Handler, HostContext

log = structlog.get_logger("pyprov.agent")


def ordered(documents: list[Any]) -> list[Any]:
    """Dependency order by kind; manifest order within a kind."""
    rank = {kind: index for index, kind in enumerate(KIND_ORDER)}
    return sorted(documents, key=lambda doc: rank.get(doc.kind, len(rank)))


def _event(ctx: HostContext, doc: Any, action: Action, options: Options,
           details: Mapping[str, str] | None = None) -> Event:
    status: Status = "failed" if action.refused else ("changed" if action.op != "none" else "ok")
    return Event(
        host=ctx.host, kind=doc.kind, name=doc.name, status=status, action=action.op,
        check=options.check, summary=action.summary, changes=list(action.changes),
        diff=action.diff if options.diff else None, error=action.refused,
        details=dict(details or {}),
    )


def reconcile_one(handler: Handler, doc: Any, ctx: HostContext, options: Options) -> Event:
    """observe -> plan -> apply for one resource; errors become a failed event."""
    try:
        observed = handler.observe(doc, ctx)
        action = handler.plan(doc, observed, options)
        if options.check or not action.changes_host:
            return _event(ctx, doc, action, options)
        log.info("applying", kind=doc.kind, name=doc.name, op=action.op)
        details = handler.apply(doc, action, ctx)
        return _event(ctx, doc, action, options, details)
    except (PyprovError, OSError) as exc:
        log.warning("resource failed", kind=doc.kind, name=doc.name, error=str(exc))
        return Event(host=ctx.host, kind=doc.kind, name=doc.name, status="failed",
                     check=options.check, summary="failed", error=str(exc))


def reconcile(documents: list[Any], handlers: Mapping[str, Handler], ctx: HostContext,
              options: Options) -> Iterator[Event]:
    """One pass: every resource in dependency order; one failure does not stop the rest."""
    for doc in ordered(documents):
        handler = handlers.get(doc.kind)
        if handler is None:
            yield Event(host=ctx.host, kind=doc.kind, name=doc.name, status="failed",
                        check=options.check, summary="unsupported",
                        error=f"this agent does not reconcile kind {doc.kind} yet")
            continue
        yield reconcile_one(handler, doc, ctx, options)
