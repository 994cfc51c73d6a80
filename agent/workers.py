"""The resident agent's warm workers: a host command run on its client's stdio.

The server forks (twice: the worker is nobody's child to wait for) and goes back to
accepting; the worker takes the client's stdin/stdout/stderr, working directory and
environment, so the command behaves as if the client had run it, with every import
already paid. A client of another version or build is refused, and runs the command
itself (see agent/fastclient.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
from typing import Any

from agent.fastclient import client_build
from agent.hostcommands import HOST_COMMANDS


def warm_up() -> None:
    """Import what the host commands need, once, before any fork."""
    import agent.containers.commands
    import agent.images.commands
    import agent.model
    import agent.runtime.engine
    import agent.runtime.network.facade
    import agent.runtime.spec  # noqa: F401
    from agent.model import Container  # the lazily loaded models, built now

    del Container
    with contextlib.suppress(ImportError):
        import pyroute2  # type: ignore[import-untyped]  # noqa: F401 - 150 ms per bridge run


def _valid(header: dict[str, Any], fds: list[int]) -> bool:
    argv, env, cwd = header.get("cli"), header.get("env"), header.get("cwd")
    return (len(fds) == 3 and isinstance(argv, list) and bool(argv)
            and all(isinstance(a, str) for a in argv) and argv[0] in HOST_COMMANDS
            and isinstance(env, dict) and isinstance(cwd, str)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()))


def fork_worker(conn: socket.socket, header: dict[str, Any], fds: list[int],
                server: socket.socket) -> None:
    try:
        if header.get("build") != client_build() or not _valid(header, fds):
            conn.sendall(json.dumps({"refused": "another build, or a malformed request"})
                         .encode() + b"\n")
            return
        child = os.fork()
        if child == 0:
            code = 1
            try:
                if os.fork() == 0:
                    server.close()
                    code = _work(conn, header, fds)
                else:
                    code = 0
            finally:
                os._exit(code & 0xFF)
        os.waitpid(child, 0)
        print(f"pyprov agent: forked a worker for {header['cli'][0]}", file=sys.stderr,
              flush=True)
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def _work(conn: socket.socket, header: dict[str, Any], fds: list[int]) -> int:
    """In the worker: become the client, run the command, report its exit code."""
    from agent.hostcommands import run_host_command

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    fds.clear()
    os.environ.clear()
    os.environ.update(header["env"])
    with contextlib.suppress(OSError):
        os.chdir(header["cwd"])
    conn.settimeout(None)
    conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
    try:
        code = run_host_command(list(header["cli"]))
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    except Exception as exc:  # the worker's boundary: a line, never a traceback
        print(f"pyprov {header['cli'][0]}: internal error: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        code = 4
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
    return code
