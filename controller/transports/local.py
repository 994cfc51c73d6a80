"""The local transport: commands as child processes of this controller.

The agent runs under this interpreter (the controller's own installation), through
the same CLI and JSON protocol as over SSH, so localhost exercises the fleet's path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from controller.errors import TransportError
from controller.transports.base import AgentSession, CommandResult, Transport


class _LocalSession(AgentSession):
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._stderr: list[bytes] = []
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    def _read_stderr(self) -> None:
        if self._process.stderr is not None:
            for chunk in self._process.stderr:
                self._stderr.append(chunk)

    def lines(self) -> Iterator[str]:
        if self._process.stdout is None:
            return
        for raw in self._process.stdout:
            yield raw.decode("utf-8", "replace").rstrip("\n")

    def wait(self) -> int:
        code = self._process.wait()
        self._drain.join()
        return code

    def stderr_text(self) -> str:
        return b"".join(self._stderr).decode("utf-8", "replace")


class LocalTransport(Transport):
    def __init__(self, host: str = "localhost", python: str = sys.executable,
                 forward_stderr: bool = True) -> None:
        self.host = host
        self.agent_python = python
        self._forward_stderr = forward_stderr

    def run(self, argv: list[str], stdin: bytes = b"", timeout: float = 600) -> CommandResult:
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout,
                                  cwd="/", check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise TransportError(self.host, f"cannot run {argv[0]}: {exc}") from exc
        return CommandResult(done.returncode, done.stdout, done.stderr)

    @contextmanager
    def stream(self, argv: list[str], stdin: bytes,
               timeout: float | None = None,  # noqa: ARG002 - no network silence locally
               ) -> Iterator[AgentSession]:
        # cwd "/": an `agent` directory wherever the operator stands must never run as root.
        stderr = None if self._forward_stderr else subprocess.PIPE
        try:
            process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=stderr, env=os.environ.copy(), cwd="/")
        except OSError as exc:
            raise TransportError(self.host, f"cannot start {argv[0]}: {exc}") from exc
        try:
            if process.stdin is not None:
                try:
                    process.stdin.write(stdin)
                    process.stdin.close()
                except BrokenPipeError:
                    pass  # the command exited early; its exit code and output tell why
            yield _LocalSession(process)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()

    def upload(self, local: Path, remote: str, mode: int = 0o644) -> None:
        target = Path(remote)
        temp = target.with_name(f".{target.name}.pyprov-upload")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, temp)
        temp.chmod(mode)
        temp.replace(target)
