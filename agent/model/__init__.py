"""The desired-state contract: manifest documents, docker syntaxes, agent protocol.

This package imports nothing else of pyprov (a test enforces it): the controller
validates with it, the agent re-validates what it receives with it.
"""

from agent.model.documents import (
    KINDS,
    Container,
    DaemonConfig,
    Document,
    Image,
    RegistryConfig,
    document_class,
)
from agent.model.protocol import PROTOCOL_VERSION, DesiredState, Event, exit_code

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
