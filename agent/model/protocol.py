"""The controller <-> agent contract: desired state in, JSON-lines events out."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.model.constants import PROTOCOL_VERSION
from agent.model.documents import Document


class DesiredState(BaseModel):
    """Everything one host must be: sent by the controller, stored by the agent."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    protocol: int = PROTOCOL_VERSION
    host: str = "localhost"
    documents: list[Document] = Field(default_factory=list, max_length=100_000)


Status = Literal["ok", "changed", "failed"]


class Event(BaseModel):
    """The result of one resource on one host (or of the host itself when kind is "Host").

    ``changed`` and ``failed`` are independent: a daemon.json written whose dockerd
    could not be restarted changed the host *and* failed (exit code 6).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    host: str
    kind: str
    name: str
    changed: bool = False
    failed: bool = False
    action: str = "none"
    check: bool = False
    summary: str = ""
    changes: list[str] = Field(default_factory=list)
    diff: str | None = None
    error: str | None = None
    details: dict[str, str] = Field(default_factory=dict)

    @property
    def status(self) -> Status:
        """The one word a recap shows: a failure wins over a change."""
        if self.failed:
            return "failed"
        return "changed" if self.changed else "ok"
