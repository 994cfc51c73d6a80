"""A host command handed to the resident agent: its warm worker runs it on our stdio.

``pyprov run`` pays ~150 ms of imports (pydantic, the manifest models, pyroute2) before
it does anything; the resident agent (``agent serve``) paid them once. When it serves
this state dir, the command, our working directory and environment go to it over its
socket with our stdin, stdout and stderr (SCM_RIGHTS); it forks a worker that runs the
command on them, as if it were us, and answers with the worker's pid, then its exit
code. Signals we get (Ctrl-C, a resize) are passed on to the worker. With no resident
agent, or one of another version, the caller runs the command itself.

Standard library only, and nothing of pyprov's but constants: this is the fast path.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from agent.model.constants import AGENT_SOCKET
from agent.process import build_id
from agent.state import resolve_state_dir

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGWINCH)


def client_build() -> str:
    """What the resident agent must also be running: version and bootstrap build."""
    from agent import __version__

    return f"{__version__}+{build_id()}"


def _state_dir(argv: list[str]) -> Path:
    """``--state-dir`` as the command will read it, else the environment's or the default."""
    explicit = None
    for index, arg in enumerate(argv):
        if arg == "--state-dir" and index + 1 < len(argv):
            explicit = argv[index + 1]
        elif arg.startswith("--state-dir="):
            explicit = arg.split("=", 1)[1]
    return resolve_state_dir(explicit)


def forward(argv: list[str]) -> int | None:
    """The command's exit code, run by the resident agent; None when none serves."""
    path = _state_dir(argv) / AGENT_SOCKET
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        return None
    with conn:
        request = {"cli": argv, "cwd": str(Path.cwd()), "env": dict(os.environ),
                   "build": client_build()}
        try:
            socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [0, 1, 2])
        except OSError:
            return None
        replies = conn.makefile("rb")
        first = json.loads(replies.readline() or b"{}")
        worker = first.get("pid")
        if not isinstance(worker, int):
            return None  # refused (another build, an old agent): run it ourselves
        previous = {signum: signal.signal(signum, _passer(worker)) for signum in FORWARDED}
        try:
            last = json.loads(replies.readline() or b"{}")
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        code = last.get("exit")
        return code if isinstance(code, int) else 255  # the worker died without a word


def _passer(worker: int) -> Callable[[int, FrameType | None], None]:
    def passing(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signum)
    return passing
