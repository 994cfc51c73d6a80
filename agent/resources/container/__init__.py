"""The Container resource: a container the host must run (or keep stopped, or not have),
made by pyprov's own runtime. observe.py reads the runtime's records, plan.py decides
(pure), apply.py creates, starts, stops, recreates or removes; ``prune`` removes the
containers a manifest made that no manifest names any more (never one made by hand).
"""

from __future__ import annotations

from collections.abc import Iterator

from agent.model import Container, Event
from agent.reconcile.actions import Action, Applied, Options
from agent.reconcile.handler import HostContext
from agent.resources.container.apply import apply
from agent.resources.container.observe import ObservedContainer, observe, runtime_for
from agent.resources.container.plan import plan


class ContainerHandler:
    kind = "Container"

    def observe(self, doc: Container, ctx: HostContext) -> ObservedContainer:
        return observe(doc, ctx)

    def plan(self, doc: Container, observed: ObservedContainer, options: Options) -> Action:
        return plan(doc, observed, options)

    def apply(self, doc: Container, action: Action, ctx: HostContext) -> Applied:
        return apply(doc, action, ctx)

    def prune(self, docs: list[Container], ctx: HostContext, options: Options) -> Iterator[Event]:
        runtime = runtime_for(ctx)
        named = {doc.name for doc in docs}
        for record in runtime.store.all():
            if not record.managed or record.name in named:
                continue
            event = Event(host=ctx.host, kind="Container", name=record.name, changed=True,
                          action="delete", check=options.check,
                          summary=f"remove container {record.short_id}: no manifest names it",
                          changes=["no manifest names it"])
            if not options.check:
                try:
                    runtime.remove(record, force=True)
                except (OSError, Exception) as exc:  # one failure must not stop the pass
                    event = event.model_copy(update={"failed": True, "error": str(exc)})
            yield event


__all__ = ["ContainerHandler"]
