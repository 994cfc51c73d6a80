"""The one seam between controller and hosts: run commands, stream the agent, copy files.

``local`` runs them as child processes, ``ssh`` over one paramiko connection per host
kept for the whole run. Everything the controller does to a host goes through here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CommandResult:
    code: int
    stdout: bytes
    stderr: bytes


class AgentSession(ABC):
    """A running command: its stdout lines as they come, then its exit code."""

    @abstractmethod
    def lines(self) -> Iterator[str]: ...

    @abstractmethod
    def wait(self) -> int: ...

    @abstractmethod
    def stderr_text(self) -> str:
        """What the command wrote on stderr (complete once ``wait`` returned)."""


class Transport(ABC):
    """One host. ``agent_python`` is the interpreter that has pyprov installed there."""

    host: str
    agent_python: str

    def connect(self) -> None:  # noqa: B027 - optional: local hosts have nothing to open
        """Open the connection now (``TransportError`` if the host cannot be reached)."""

    def close(self) -> None:  # noqa: B027 - optional: local hosts have nothing to close
        """Release the connection."""

    @abstractmethod
    def run(self, argv: list[str], stdin: bytes = b"", timeout: float = 600) -> CommandResult:
        """Run a command to completion."""

    @abstractmethod
    def stream(self, argv: list[str], stdin: bytes,
               timeout: float | None = None) -> AbstractContextManager[AgentSession]:
        """Run a command, feeding ``stdin``, and stream its stdout lines (``timeout``: the
        longest silence tolerated, None for none)."""

    @abstractmethod
    def upload(self, local: Path, remote: str, mode: int = 0o644) -> None:
        """Copy a file to the host (atomically: a temp name, then a rename)."""

    def agent_argv(self, args: list[str]) -> list[str]:
        # -I: never import an `agent` package from the working directory or PYTHONPATH.
        return [self.agent_python, "-I", "-m", "agent", *args]

    def run_agent(self, args: list[str], stdin: bytes) -> AbstractContextManager[AgentSession]:
        return self.stream(self.agent_argv(args), stdin)
