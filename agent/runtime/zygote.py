"""The monitor zygote: one small resident process per host that forks a monitor per
container, so a container costs a forked monitor instead of a Python interpreter.

Measured here (tests/bench/bench_runtime.py, 100 containers): 2.3 MiB PSS per monitor,
zygote included, beside docker's 2.5 MiB shim and podman's 0.34 MiB conmon; a monitor
exec'd as its own interpreter costs more than the shim. Nearly all of it is pages the
monitor copies from the zygote by running Python at all: every object its code touches
gets its reference count written (Python 3.11 has no immortal objects), and
``gc.freeze()`` keeps only the collector's own writes away. Going lower means fewer
monitor processes (one per group of containers), not a leaner one.

The zygote runs without site-packages (``python -I -S``, pyprov's directory put on
``sys.path`` by its starter), detached from the agent (containers outlive agent
restarts), and listens on a unix socket (0600, same-uid peers). One request per
connection, a JSON line ``{"start": MonitorConfig fields, "build": ...}`` with the
published ports' listening sockets passed alongside (SCM_RIGHTS): the monitor inherits
them and serves the loopback proxy on them. The answer is ``{"ok": true, "pid": N}``.
A zygote of another build answers ``{"ok": false, "stale": true}`` and exits, so an
upgrade is picked up by the next start. Each monitor is its own process in its own
session: a crash touches one container, and the zygote exiting touches none.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import agent.runtime.network.proxy  # noqa: F401 - loaded before gc.freeze: shared by monitors
from agent.runtime.monitor import Monitor, MonitorConfig
from agent.unixsock import listen_private, peer

MAX_REQUEST = 1 << 20
MAX_FDS = 256
START_TIMEOUT = 10.0


class ZygoteError(OSError):
    """The zygote could not be reached, started, or refused a start."""


def _start(request: dict[str, object], fds: list[int], close: list[int]) -> int:
    """Fork a monitor for one container; its pid (read back through a pipe). ``close``:
    the zygote's own descriptors, which no monitor keeps."""
    wants_console, wants_stdin = request.pop("console", False), request.pop("stdin", False)
    config = MonitorConfig(**request)  # type: ignore[arg-type]
    listen = list(fds)  # the order the runtime sent: published ports, console, stdin
    config.stdin_fd = listen.pop() if wants_stdin and listen else None
    config.console_fd = listen.pop() if wants_console and listen else None
    config.listen_fds = listen
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        code = 1
        try:
            os.close(pid_r)
            for fd in close:
                os.close(fd)
            os.setsid()
            # Forked twice: the monitor is reparented away from the zygote.
            if os.fork() == 0:
                os.write(pid_w, str(os.getpid()).encode())
                os.close(pid_w)
                code = Monitor(config).run()
            else:
                code = 0
        finally:
            os._exit(code & 0xFF)
    os.close(pid_w)
    os.waitpid(child, 0)
    with os.fdopen(pid_r, "rb") as pipe:
        pid = pipe.read()
    if not pid:
        raise OSError("the monitor died before it started")
    return int(pid)


def _receive(conn: socket.socket) -> tuple[dict[str, object], list[int]]:
    data, fds = b"", []
    while not data.endswith(b"\n"):
        chunk, more, _flags, _addr = socket.recv_fds(conn, MAX_REQUEST, MAX_FDS)
        fds.extend(more)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ValueError("request too large")
    for fd in fds:
        os.set_inheritable(fd, False)
    return json.loads(data), fds


def serve(path: str, build: str) -> None:
    server = listen_private(Path(path))
    gc.freeze()  # everything imported so far is shared with every monitor, untouched
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    uid = os.getuid()
    while True:
        conn, _ = server.accept()
        with conn:
            if peer(conn).uid != uid:
                continue
            fds: list[int] = []
            stale = False
            try:
                request, fds = _receive(conn)
                if request.get("build", build) != build:
                    answer: dict[str, object] = {"ok": False, "stale": True,
                                                 "error": "the zygote is of another build"}
                    stale = True
                else:
                    pid = _start(request["start"], fds,  # type: ignore[arg-type]
                                 [server.fileno(), conn.fileno()])
                    answer = {"ok": True, "pid": pid}
            except (ValueError, KeyError, TypeError, OSError) as exc:
                answer = {"ok": False, "error": str(exc)}
            finally:
                for fd in fds:
                    os.close(fd)
            conn.sendall(json.dumps(answer).encode() + b"\n")
        if stale:
            with contextlib.suppress(FileNotFoundError):
                Path(path).unlink()
            return


def request_start(path: str, config: dict[str, object], fds: list[int] | None = None,
                  build: str | None = None, timeout: float = 10.0) -> int:
    """Ask the zygote at ``path`` to start a monitor; the monitor's pid.
    Raises ZygoteError (``stale`` set when the zygote is of another build)."""
    request: dict[str, object] = {"start": config}
    if build is not None:
        request["build"] = build
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as conn:
        conn.settimeout(timeout)
        try:
            conn.connect(path)
        except OSError as exc:
            raise ZygoteError(f"cannot reach the monitor zygote at {path}: {exc}") from exc
        payload = json.dumps(request).encode() + b"\n"
        socket.send_fds(conn, [payload], list(fds or []))
        answer = json.loads(conn.makefile("rb").readline(MAX_REQUEST) or b"{}")
    if not answer.get("ok"):
        error = ZygoteError(f"the monitor zygote refused: {answer.get('error', 'no answer')}")
        error.stale = bool(answer.get("stale"))  # type: ignore[attr-defined]
        raise error
    return int(answer["pid"])


def launch_zygote(path: Path, build: str, log: Path) -> int:
    """Start a zygote detached (own session, no site-packages, stdio to ``log``) and wait
    for its socket; its pid."""
    package_parent = str(Path(__file__).resolve().parents[2])
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from agent.runtime.zygote import main; main(sys.argv[2:])")
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", code, package_parent, str(path), build],
            stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, close_fds=True,
            start_new_session=True, cwd="/")
    finally:
        os.close(fd)
    deadline = time.monotonic() + START_TIMEOUT
    while not path.exists():
        if child.poll() is not None:
            raise ZygoteError(f"the monitor zygote exited at once (code {child.returncode}); "
                              f"see {log}")
        if time.monotonic() > deadline:
            child.kill()
            raise ZygoteError(f"the monitor zygote did not listen in {START_TIMEOUT:.0f} s")
        time.sleep(0.005)
    return child.pid


def main(argv: list[str]) -> None:
    path, build = argv[0], argv[1] if len(argv) > 1 else ""
    serve(path, build)


if __name__ == "__main__":
    main(sys.argv[1:])
