"""The DaemonConfig resource: Docker's daemon.json, owned keys set, the rest preserved.

observe.py reads the host, plan.py decides (pure), apply.py executes, dockerd.py finds
and signals the dockerd reading the file, ownership.py remembers what is owned and owed.
"""

from __future__ import annotations

from agent.model import DaemonConfig
from agent.reconcile.actions import Action, Applied, Options
from agent.reconcile.handler import HostContext
from agent.resources.daemon_config.apply import apply
from agent.resources.daemon_config.observe import ObservedDaemonConfig, observe
from agent.resources.daemon_config.plan import plan


class DaemonConfigHandler:
    kind = "DaemonConfig"

    def observe(self, doc: DaemonConfig, ctx: HostContext) -> ObservedDaemonConfig:
        return observe(doc, ctx)

    def plan(self, doc: DaemonConfig, observed: ObservedDaemonConfig, options: Options) -> Action:
        return plan(doc, observed, options)

    def apply(self, doc: DaemonConfig, action: Action, ctx: HostContext) -> Applied:
        return apply(doc, action, ctx)


__all__ = ["DaemonConfigHandler"]
