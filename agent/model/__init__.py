"""The desired-state contract: manifest documents, docker syntaxes, agent protocol.

This package imports nothing else of pyprov (a test enforces it): the controller
validates with it, the agent re-validates what it receives with it. Its names load on
first use (PEP 562): ``agent.model.syntax`` and ``agent.model.constants`` do not need
pydantic, and the image commands start ~100 ms faster without it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.model.constants import PROTOCOL_VERSION, exit_code
    from agent.model.documents import (
        KINDS,
        Container,
        DaemonConfig,
        Document,
        Image,
        RegistryConfig,
        document_class,
    )
    from agent.model.protocol import DesiredState, Event

_HOME = {
    "KINDS": "documents", "Container": "documents", "DaemonConfig": "documents",
    "Document": "documents", "Image": "documents", "RegistryConfig": "documents",
    "document_class": "documents", "DesiredState": "protocol", "Event": "protocol",
    "PROTOCOL_VERSION": "constants", "exit_code": "constants",
}

__all__ = [
    "KINDS",
    "PROTOCOL_VERSION",
    "Container",
    "DaemonConfig",
    "DesiredState",
    "Document",
    "Event",
    "Image",
    "RegistryConfig",
    "document_class",
    "exit_code",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"agent.model.{_HOME[name]}"), name)
    globals()[name] = value
    return value
