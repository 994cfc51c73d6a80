"""One package per resource kind; ``handlers()`` maps each kind to its handler."""

from __future__ import annotations

from agent.reconcile.handler import Handler


def handlers() -> dict[str, Handler]:
    """Kinds this agent reconciles; imported on demand to keep start-up small."""
    from agent.resources.container import ContainerHandler
    from agent.resources.daemon_config import DaemonConfigHandler
    from agent.resources.image import ImageHandler
    from agent.resources.registry_config import RegistryConfigHandler

    return {"DaemonConfig": DaemonConfigHandler(), "RegistryConfig": RegistryConfigHandler(),
            "Image": ImageHandler(), "Container": ContainerHandler()}
