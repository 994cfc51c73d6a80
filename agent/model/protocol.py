"""The controller <-> agent contract: desired state in, JSON-lines events out."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.model.documents import Document

PROTOCOL_VERSION = 1

# Where a host keeps its state, and the resident agent's socket in it: the controller
# reaches that socket over SSH (a direct-streamlocal channel) when an agent serves it.
DEFAULT_STATE_DIR = "/var/lib/pyprov"
AGENT_SOCKET = "agent.sock"
# Bootstrap writes its build id (a digest of the wheels) here in the agent's install dir;
# ``agent version`` reports it, and an agent of another build is an upgrade.
BUILD_FILE = ".pyprov-build"

# Puppet's detailed exit codes: 0 nothing to do, 2 changes (or drift in check mode),
# 4 failures, 6 both.
EXIT_OK = 0
EXIT_CHANGED = 2
EXIT_FAILED = 4


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


def exit_code(changed: bool, failed: bool) -> int:
    """Puppet's detailed exit code for a run."""
    return (EXIT_CHANGED if changed else EXIT_OK) | (EXIT_FAILED if failed else EXIT_OK)
