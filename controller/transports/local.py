"""The local transport: the agent as a child process of this interpreter.

The same CLI and JSON protocol as over SSH, so localhost exercises the path a fleet uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from controller.errors import TransportError
from controller.transports.base import AgentSession, Transport


class _LocalSession(AgentSession):
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process

    def lines(self) -> Iterator[str]:
        if self._process.stdout is None:
            return
        for raw in self._process.stdout:
            yield raw.decode("utf-8", "replace").rstrip("\n")

    def wait(self) -> int:
        return self._process.wait()


class LocalTransport(Transport):
    def __init__(self, host: str = "localhost", python: str = sys.executable) -> None:
        self.host = host
        self._python = python

    @contextmanager
    def run_agent(self, args: list[str], stdin: bytes) -> Iterator[AgentSession]:
        # -I and cwd "/": an `agent` directory wherever the operator stands must never be
        # what runs as root.
        command = [self._python, "-I", "-m", "agent", *args]
        try:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       env=os.environ.copy(), cwd="/")
        except OSError as exc:
            raise TransportError(self.host, f"cannot start the agent: {exc}") from exc
        try:
            if process.stdin is not None:
                try:
                    process.stdin.write(stdin)
                    process.stdin.close()
                except BrokenPipeError:
                    pass  # the agent exited early; its exit code and events tell why
            yield _LocalSession(process)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
