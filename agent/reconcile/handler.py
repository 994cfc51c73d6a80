"""The interface every resource kind implements, and the kinds' dependency order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agent.reconcile.actions import Action, Applied, Options
from agent.state import StateDir

# Registry configuration first (daemon.json, pyprov's own: they decide mirrors and
# insecure registries), then images, then containers.
KIND_ORDER = ("DaemonConfig", "RegistryConfig", "Image", "Container")


DAEMON_JSON = Path("/etc/docker/daemon.json")


@dataclass(frozen=True)
class HostContext:
    """``daemon_json``: the file whose mirrors and insecure registries the registry client
    honours (the desired DaemonConfig's path, else dockerd's default)."""

    host: str
    state: StateDir
    daemon_json: Path = DAEMON_JSON


class Handler(Protocol):
    """``plan`` is pure; ``observe`` only reads; ``apply`` only executes the plan."""

    kind: str

    def observe(self, doc: Any, ctx: HostContext) -> Any: ...

    def plan(self, doc: Any, observed: Any, options: Options) -> Action: ...

    def apply(self, doc: Any, action: Action, ctx: HostContext) -> Applied: ...
