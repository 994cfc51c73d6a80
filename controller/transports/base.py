"""The one seam between controller and hosts: run an agent command, stream its lines."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager


class AgentSession(ABC):
    """A running agent command: its stdout lines as they come, then its exit code."""

    @abstractmethod
    def lines(self) -> Iterator[str]: ...

    @abstractmethod
    def wait(self) -> int: ...


class Transport(ABC):
    """Runs ``pyprov agent ARGS`` on one host with ``stdin`` as its input."""

    host: str

    @abstractmethod
    def run_agent(self, args: list[str], stdin: bytes) -> AbstractContextManager[AgentSession]: ...
