"""Runs one pass over a host's desired state and yields one event per resource."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from agent.errors import PyprovError
from agent.logsetup import get_logger
from agent.model import Event
from agent.reconcile.actions import Action, Applied, Options
from agent.reconcile.handler import KIND_ORDER, Handler, HostContext

log = get_logger("pyprov.agent")


def ordered(documents: list[Any]) -> list[Any]:
    """Dependency order by kind; manifest order within a kind."""
    rank = {kind: index for index, kind in enumerate(KIND_ORDER)}
    return sorted(documents, key=lambda doc: rank.get(doc.kind, len(rank)))


def _event(ctx: HostContext, doc: Any, action: Action, options: Options,
           applied: Applied | None = None) -> Event:
    error = action.refused or (applied.error if applied else None)
    return Event(
        host=ctx.host, kind=doc.kind, name=doc.name,
        changed=applied.changed if applied else action.changes_host,
        failed=error is not None, action=action.op, check=options.check,
        summary=action.summary, changes=list(action.changes),
        diff=action.diff if options.diff else None, error=error,
        details=dict(applied.details) if applied else {},
    )


def reconcile_one(handler: Handler, doc: Any, ctx: HostContext, options: Options) -> Event:
    """observe -> plan -> apply for one resource; errors become a failed event."""
    action: Action | None = None
    try:
        observed = handler.observe(doc, ctx)
        action = handler.plan(doc, observed, options)
        if options.check or not (action.changes_host or action.bookkeeping):
            return _event(ctx, doc, action, options)
        log.info("applying", kind=doc.kind, name=doc.name, op=action.op)
        return _event(ctx, doc, action, options, handler.apply(doc, action, ctx))
    except (PyprovError, OSError) as exc:
        log.warning("resource failed", kind=doc.kind, name=doc.name, error=str(exc))
        # Failing inside apply, the host may already have changed: say so (exit 6).
        return Event(host=ctx.host, kind=doc.kind, name=doc.name, failed=True,
                     changed=bool(action and action.changes_host and not options.check),
                     action=action.op if action else "none", check=options.check,
                     summary=action.summary if action else "failed", error=str(exc))


def reconcile(documents: list[Any], handlers: Mapping[str, Handler], ctx: HostContext,
              options: Options) -> Iterator[Event]:
    """One pass: every resource in dependency order; one failure does not stop the rest.
    After a kind's documents, a handler with ``prune`` removes what it made earlier that
    the desired state no longer names (the stored desired state is the host's whole)."""
    docs = ordered(documents)
    for kind in dict.fromkeys([*KIND_ORDER, *(doc.kind for doc in docs)]):
        of_kind = [doc for doc in docs if doc.kind == kind]
        handler = handlers.get(kind)
        for doc in of_kind:
            if handler is None:
                yield Event(host=ctx.host, kind=doc.kind, name=doc.name, failed=True,
                            check=options.check, summary="unsupported",
                            error=f"this agent does not reconcile kind {doc.kind} yet")
                continue
            yield reconcile_one(handler, doc, ctx, options)
        prune = getattr(handler, "prune", None)
        if prune is not None:
            yield from prune(of_kind, ctx, options)
