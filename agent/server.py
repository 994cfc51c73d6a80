"""The resident agent: the CLI answered on a unix socket, so a run starts no interpreter.

An agent process pays ~150 ms of imports before it does anything; a fleet pays that on
every host at every run. ``pyprov agent serve`` pays it once. The controller reaches
it over the SSH connection it already has, through a tiny relay (``python -I -S``, no
imports of ours) that falls back to starting the agent when nothing listens.

Wire format, one request per connection: a JSON line ``{"argv": [...]}``, then the
command's stdin until the client shuts down its side; the reply is the command's
stdout, then a last line ``{"exit": N}``. Served: ``apply``, ``check``, ``status``,
``version``; ``apply`` and ``check`` in a forked child when the agent's loop spawns
them, so a long pull never keeps ``pyprov ps`` waiting.

Host commands (``run``, ``ps``, ``pull``...; see agent/fastclient.py) come as
``{"cli": [...], "cwd", "env", "build"}`` with the client's stdin, stdout and stderr
attached (SCM_RIGHTS): a worker forked from this warm process runs the command on
them and the server goes back to accepting at once; the worker answers
``{"pid": N}``, then ``{"exit": N}``.
The socket is ``STATE_DIR/agent.sock``, mode 0600 in a 0700 directory, and a peer
must have the server's own uid (SO_PEERCRED).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from agent.logsetup import get_logger
from agent.model.constants import AGENT_SOCKET, EXIT_FAILED
from agent.state import StateDir
from agent.unixsock import listen_private, peer
from agent.workers import fork_worker

Handler = Callable[[list[str], TextIO, TextIO], int]
# Runs a request in a child of the agent (see agent/loop/runner.py): argv, then the work.
Spawn = Callable[[list[str], Callable[[], None]], None]
SERVED = ("apply", "check", "status", "version")
FORKED = ("apply", "check")  # may take minutes: the socket keeps answering meanwhile
MAX_REQUEST = 64 * 1024 * 1024
MAX_HEADER = 4 * 1024 * 1024
READ_TIMEOUT = 60.0

log = get_logger("pyprov.agent.server")


def socket_path(state: StateDir) -> Path:
    return state.root / AGENT_SOCKET


def _listen(path: Path) -> socket.socket:
    """The socket, unless another agent already serves it (a dead one's is replaced)."""
    with contextlib.suppress(FileNotFoundError):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
            raise SystemExit(f"pyprov agent: another agent already serves {path}")
        except ConnectionRefusedError:
            path.unlink()  # a dead server's socket
        finally:
            probe.close()
    return listen_private(path)


def _read_header(conn: socket.socket) -> tuple[dict[str, object], bytes, list[int]]:
    """The first JSON line, what came after it, and the descriptors sent with it."""
    data, fds = b"", []
    while b"\n" not in data:
        chunk, more, _flags, _addr = socket.recv_fds(conn, 65536, 3)
        fds.extend(more)
        if not chunk or len(data) > MAX_HEADER:
            break
        data += chunk
    line, _, rest = data.partition(b"\n")
    header = json.loads(line or b"{}")
    return (header if isinstance(header, dict) else {}), rest, fds


def _answer(conn: socket.socket, handle: Handler, server: socket.socket,
            spawn: Spawn | None) -> list[str]:
    """Answer one request, or hand it to a child; the argv served (a host command's is
    its ``cli``)."""
    started = time.monotonic()
    conn.settimeout(READ_TIMEOUT)
    header, rest, fds = _read_header(conn)
    if "cli" in header:
        fork_worker(conn, header, fds, server)
        cli = header.get("cli")
        return [str(a) for a in cli] if isinstance(cli, list) else ["?"]
    for fd in fds:
        os.close(fd)
    argv = header.get("argv")
    if (not isinstance(argv, list) or not argv or argv[0] not in SERVED
            or not all(isinstance(a, str) for a in argv)):
        _refuse(conn)
        return ["?"]
    if spawn is not None and argv[0] in FORKED:
        spawn(argv, lambda: _run(conn, handle, argv, rest, started))
    else:
        _run(conn, handle, argv, rest, started)
    return argv


def _refuse(conn: socket.socket) -> None:
    conn.sendall(json.dumps({"host": "localhost", "kind": "Host", "name": "agent",
                             "failed": True, "error": "malformed request"}).encode()
                 + b"\n" + json.dumps({"exit": EXIT_FAILED}).encode() + b"\n")


def _run(conn: socket.socket, handle: Handler, argv: list[str], rest: bytes,
         started: float) -> None:
    with conn.makefile("rb") as reader:
        body = rest + reader.read(MAX_REQUEST + 1)
    conn.settimeout(None)
    if len(body) > MAX_REQUEST:
        _refuse(conn)
        return
    try:
        code = handle(argv, io.StringIO(body.decode("utf-8", "replace")), _Live(conn))
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else EXIT_FAILED
    conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
    print(f"pyprov agent: served {argv[0]} (exit {code}) in "
          f"{(time.monotonic() - started) * 1000:.0f} ms", file=sys.stderr, flush=True)


class _Live(io.StringIO):
    """Events go to the client as they are written, as the CLI's stdout would."""

    def __init__(self, conn: socket.socket) -> None:
        super().__init__()
        self._conn = conn

    def write(self, text: str) -> int:
        self._conn.sendall(text.encode())
        return len(text)


class Server:
    """The listening socket; the caller's loop (agent/loop/runner.py) calls ``answer``
    when it is readable. Requests are answered one at a time (a pass holds the host lock
    anyway); host commands go to forked workers at once."""

    def __init__(self, state: StateDir, handle: Handler, spawn: Spawn | None = None) -> None:
        state.ensure()
        self.path = socket_path(state)
        self._handle, self._spawn = handle, spawn
        self._socket = _listen(self.path)
        self._uid = os.getuid()
        print(f"pyprov agent: serving {self.path}", file=sys.stderr, flush=True)

    def fileno(self) -> int:
        return self._socket.fileno()

    def answer(self) -> list[str] | None:
        """Accept one connection and answer it: the argv served, None if refused."""
        conn, _ = self._socket.accept()
        with conn:
            try:
                if peer(conn).uid != self._uid:
                    return None
                return _answer(conn, self._handle, self._socket, self._spawn)
            except (OSError, ValueError) as exc:
                log.warning("request failed", error=str(exc))
                return None

    def close(self, unlink: bool = True) -> None:
        """``unlink=False`` in a forked child: the socket file belongs to the server."""
        self._socket.close()
        if unlink:
            self.path.unlink(missing_ok=True)
