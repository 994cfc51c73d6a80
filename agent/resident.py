"""Starting, replacing and stopping the resident agent (``pyprov agent serve`` or ``run``),
idempotently.

``serve --detach`` / ``run --detach`` is what bootstrap runs on a host without systemd:
if an agent of this very build and these loop settings already serves the state dir's
socket, nothing changes; an agent of another build (an upgrade) or other settings is
stopped and a new one started, detached from the SSH session (its own
session, stdin closed, output appended to ``STATE/agent.log``). The running agent is
found through the socket itself (its pid from SO_PEERCRED, its build by asking it),
never through a pid file that could name a recycled pid.

Output: one JSON line ``{"changed": bool, "pid": N | null, "detail": "..."}``; exit 0
(nothing to do), 2 (started, replaced or stopped), 4 (failed), as the other commands.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TextIO

import agent
from agent.model.constants import (
    EXIT_CHANGED,
    EXIT_FAILED,
    EXIT_OK,
    PROTOCOL_VERSION,
)
from agent.process import build_id
from agent.runtime.procs import alive
from agent.state import StateDir
from agent.unixsock import peer

LOG_LIMIT = 8 * 1024 * 1024  # agent.log rotated to agent.log.1 beyond this, at a start
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


@cache
def identity() -> dict[str, object]:
    """What ``agent version`` answers: the handshake of controller and bootstrap. Read
    once per process: a resident agent keeps naming the build it runs, not one installed
    over it since."""
    return {"version": agent.__version__, "protocol": PROTOCOL_VERSION, "build": build_id()}


@dataclass(frozen=True)
class Running:
    pid: int
    identity: dict[str, object]


def _request(state: StateDir, argv: list[str]) -> tuple[int, object] | None:
    """(the agent's pid, its first output line as JSON), if an agent answers."""
    from agent.server import socket_path

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(10)
    try:
        conn.connect(str(socket_path(state)))
        pid = peer(conn).pid
        conn.sendall(json.dumps({"argv": argv}).encode() + b"\n")
        conn.shutdown(socket.SHUT_WR)
        with conn.makefile("rb") as reader:
            text = b""
            for line in reader:  # a JSON answer may span lines; the exit line ends it
                if line.startswith(b'{"exit":'):
                    break
                text += line
        return pid, json.loads(text or b"null")
    except (OSError, ValueError):
        return None
    finally:
        conn.close()


def running(state: StateDir) -> Running | None:
    """The agent serving the state dir's socket, if one answers."""
    answer = _request(state, ["version"])
    if answer is None:
        return None
    pid, first = answer
    return Running(pid, first if isinstance(first, dict) else {})


def ask(state: StateDir, argv: list[str]) -> dict[str, Any] | None:
    """A served command's JSON answer (``status --output json``), if an agent answers."""
    answer = _request(state, argv)
    return answer[1] if answer is not None and isinstance(answer[1], dict) else None


def _stop(pid: int) -> None:
    """SIGTERM (the server removes its socket), SIGKILL if it lingers."""
    for signum, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.05)
    raise OSError(f"the resident agent (pid {pid}) did not stop")


def _rotate(log: Path) -> None:
    try:
        if log.stat().st_size > LOG_LIMIT:
            log.replace(log.with_name(log.name + ".1"))
    except FileNotFoundError:
        pass


def _start(state: StateDir, command: list[str]) -> int:
    state.ensure()
    log = state.root / "agent.log"
    _rotate(log)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        # Its own session: the SSH session that started it may end at once.
        child = subprocess.Popen(
            [sys.executable, "-I", "-m", "agent", *command, "--state-dir", str(state.root)],
            stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, close_fds=True,
            start_new_session=True, cwd="/")
    finally:
        os.close(fd)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = running(state)
        if found is not None and found.pid == child.pid:
            return child.pid
        if child.poll() is not None:
            raise OSError(f"the resident agent exited at once (code {child.returncode}); "
                          f"see {log}")
        time.sleep(0.05)
    child.kill()
    raise OSError(f"the resident agent did not answer on its socket in {START_TIMEOUT:.0f} s")


@dataclass(frozen=True)
class Outcome:
    """What ``ensure`` did: an exit code (0 nothing, 2 changed, 4 failed) and why."""

    code: int
    pid: int | None
    detail: str

    @property
    def changed(self) -> bool:
        return self.code == EXIT_CHANGED

    def write(self, out: TextIO) -> int:
        """The JSON line ``serve/run --detach|--stop`` print; their exit code."""
        print(json.dumps({"changed": self.changed, "pid": self.pid, "detail": self.detail}),
              file=out, flush=True)
        return self.code


def ensure(state: StateDir, want: bool, command: list[str] | None = None,
           loop: dict[str, object] | None = None) -> Outcome:
    """Make the resident agent of this build run (``want``) or not run. ``command`` starts
    it (default ``serve``); ``loop`` is the loop settings it must run with (None: none)."""
    try:
        found = running(state)
        if not want:
            if found is None:
                return Outcome(EXIT_OK, None, "no resident agent")
            _stop(found.pid)
            return Outcome(EXIT_CHANGED, None, f"stopped the resident agent (pid {found.pid})")
        if found is not None and found.identity == {**identity(), "loop": loop}:
            return Outcome(EXIT_OK, found.pid, "the resident agent of this build runs"
                           + (" its loop" if loop else ""))
        if found is not None:
            _stop(found.pid)
        pid = _start(state, command or ["serve"])
    except OSError as exc:
        return Outcome(EXIT_FAILED, None, str(exc))
    if found is None:
        detail = "started the resident agent" + (" with its loop" if loop else "")
    elif {**found.identity, "loop": None} != {**identity(), "loop": None}:
        old = found.identity.get("build") or found.identity.get("version")
        detail = f"replaced the resident agent of build {old}"
    else:
        detail = f"restarted the resident agent with new settings (loop: {loop})"
    return Outcome(EXIT_CHANGED, pid, detail)
