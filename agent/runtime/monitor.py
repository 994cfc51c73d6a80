"""The per-container monitor: owns the container's process, captures its output in
docker's json-file format, records its exits, applies the restart policy, stops it.

Standard library only, plus pyprov's atomic-write helper: the monitor runs forked from a
tiny resident "zygote" (``python -I -S``, ~0.5 MiB per monitor, see the design note in
``zygote.py``), where neither site-packages nor pydantic are loaded.

State (``STATE`` file, JSON, written atomically): ``pid`` of the container process,
``monitor_pid``, ``status`` (running | restarting | exited | stopped), ``exit_code``,
``started_at``, ``finished_at`` (RFC 3339), ``restart_count``. dockerd's restart rules:
``always``, ``unless-stopped`` (both restart unless stopped), ``on-failure[:N]``
(non-zero exits, at most N restarts), ``no``; the delay starts at 100 ms and doubles,
and is reset once the process has run for 10 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from agent.fsutil.atomic import atomic_write
from agent.runtime import linux, procs, sandbox
from agent.textfmt import now_rfc3339 as _now

BACKOFF_START = 0.1
BACKOFF_MAX = 60.0
RESET_AFTER = 10.0
READ_CHUNK = 1 << 16


@dataclass
class MonitorConfig:
    argv: list[str]
    env: list[str]
    cwd: str
    log: str                      # json-file log path
    state: str                    # state file path
    restart: str = "no"           # no | always | unless-stopped | on-failure[:N]
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 10.0
    log_max_size: int = 10 << 20  # rotation: log -> log.1 ... log.(max_files-1)
    log_max_files: int = 3
    sandbox: dict[str, object] | None = None  # SandboxConfig fields; None: no isolation
    proxy: dict[str, object] | None = None    # {"target": ip, "ports": [...]}, see proxy.py
    listen_fds: list[int] = field(default_factory=list)  # the published ports' sockets
    on_exit: list[str] | None = None  # run detached once the container is down for good
    console_fd: int | None = None     # run -t: the socket its first run's pty master goes to
    stdin_fd: int | None = None       # run -i: its first run's stdin (later runs: /dev/null)
    extra: dict[str, object] = field(default_factory=dict)


def write_state(path: str, state: dict[str, object]) -> None:
    atomic_write(path, json.dumps(state).encode(), mode=0o600)


class JsonFileLog:
    """docker's json-file driver: one ``{"log","stream","time"}`` object per line, split
    at newlines (a partial line waits for its end), rotated by size."""

    def __init__(self, path: str, max_size: int, max_files: int) -> None:
        self.path, self.max_size, self.max_files = path, max_size, max(1, max_files)
        self._partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

    def write(self, stream: str, data: bytes) -> None:
        pending = self._partial[stream] + data
        *lines, self._partial[stream] = pending.split(b"\n")
        for line in lines:
            self._emit(stream, line + b"\n")
        if len(self._partial[stream]) > READ_CHUNK:  # no newline for a long time: flush
            self._emit(stream, self._partial[stream])
            self._partial[stream] = b""

    def flush(self) -> None:
        for stream, rest in self._partial.items():
            if rest:
                self._emit(stream, rest)
                self._partial[stream] = b""

    def _emit(self, stream: str, data: bytes) -> None:
        record = (json.dumps({"log": data.decode("utf-8", "replace"), "stream": stream,
                              "time": _now()}) + "\n").encode()
        size = os.fstat(self._fd).st_size
        if size and size + len(record) > self.max_size:
            self._rotate()  # before writing: the current file always has the newest line
        os.write(self._fd, record)

    def _rotate(self) -> None:
        """log -> log.1 -> ... -> log.(max_files-1); the oldest goes."""
        os.close(self._fd)
        if self.max_files == 1:
            os.truncate(self.path, 0)
        else:
            for index in range(self.max_files - 1, 1, -1):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{self.path}.{index - 1}").replace(f"{self.path}.{index}")
            Path(self.path).replace(f"{self.path}.1")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                           0o600)

    def close(self) -> None:
        self.flush()
        os.close(self._fd)


def should_restart(policy: str, exit_code: int, restarts: int, stopped: bool) -> bool:
    if stopped:
        return False
    name, _, limit = policy.partition(":")
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        return exit_code != 0 and (not limit or restarts < int(limit))
    return False


def _run_detached(argv: list[str]) -> None:
    """The runtime's clean-up (network, --rm) needs the agent's libraries, which a monitor
    never loads: it runs as its own process, in its own session, not waited for."""
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.execv(argv[0], argv)  # noqa: S606
        finally:
            os._exit(0)
    os.waitpid(child, 0)


class Monitor:
    """Runs one container process to the end of its restart policy (or a stop)."""

    def __init__(self, config: MonitorConfig) -> None:
        self.config = config
        self.stopping = False
        self.state: dict[str, object] = {"monitor_pid": os.getpid(),
                                         "monitor_start": procs.start_time(os.getpid()),
                                         "restart_count": 0, **config.extra}
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def _save(self, **changes: object) -> None:
        self.state.update(changes)
        write_state(self.config.state, self.state)

    def _on_signal(self, _signum: int, _frame: object) -> None:
        self.stopping = True
        os.write(self._wake_w, b"s")

    def _start_proxy(self) -> object:
        """docker-proxy's job, for the host's loopback: served on the published ports'
        sockets the runtime reserved and handed over (imported only when there are)."""
        from agent.runtime.network.proxy import Proxy

        spec = self.config.proxy or {}
        ports = spec["ports"]
        proxy = Proxy.from_fds(str(spec["target"]), self.config.listen_fds,
                               [int(p) for p in ports] if isinstance(ports, list) else [])
        proxy.start()
        return proxy

    def run(self) -> int:
        if self.config.sandbox is not None:
            linux.set_child_subreaper()  # the init is adopted when its launcher exits
        if self.config.proxy and self.config.listen_fds:
            self._start_proxy()
        previous = {signum: signal.signal(signum, self._on_signal)
                    for signum in (signal.SIGTERM, signal.SIGINT)}
        log = JsonFileLog(self.config.log, self.config.log_max_size, self.config.log_max_files)
        delay, code = BACKOFF_START, 0
        try:
            while True:
                started = time.monotonic()
                code = self._run_once(log)
                ran = time.monotonic() - started
                restarts = int(self.state["restart_count"])  # type: ignore[call-overload]
                if not should_restart(self.config.restart, code, restarts, self.stopping):
                    self._save(status="stopped" if self.stopping else "exited", pid=None)
                    return code
                delay = BACKOFF_START if ran >= RESET_AFTER else delay
                self._save(status="restarting", pid=None, restart_count=restarts + 1)
                select.select([self._wake_r], [], [], delay)  # a stop cuts the wait short
                delay = min(delay * 2, BACKOFF_MAX)
                if self.stopping:
                    self._save(status="stopped")
                    return code
        finally:
            log.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if self.config.on_exit:
                _run_detached(self.config.on_exit)

    def _spawn(self, log: JsonFileLog) -> tuple[int, int, int]:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        env = dict(entry.split("=", 1) for entry in self.config.env if "=" in entry)
        if self.config.sandbox is not None:
            try:
                launched = self._launch(env, out_w, err_w)
            finally:
                os.close(out_w)
                os.close(err_w)
            if launched.error:
                log.write("stderr", launched.error.encode() + b"\n")
            self.state["error"] = launched.error
            return launched.pid, out_r, err_r
        pid = os.fork()
        if pid == 0:  # the container process
            try:
                os.setsid()
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, signal.SIG_DFL)
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                os.chdir(self.config.cwd)
                os.execvpe(self.config.argv[0], self.config.argv, env)  # noqa: S606
            except OSError as exc:
                os.write(2, f"pyprov: cannot run {self.config.argv[0]}: {exc}\n".encode())
            os._exit(127)
        os.close(out_w)
        os.close(err_w)
        return pid, out_r, err_r

    def _launch(self, env: dict[str, str], out_w: int, err_w: int) -> sandbox.Launched:
        """The first run gets the caller's terminal or stdin, if it gave one; a restart
        has nobody attached: /dev/null."""
        config = sandbox.SandboxConfig.from_dict(dict(self.config.sandbox or {}))
        config.console_fd = self.config.console_fd
        stdin = self.config.stdin_fd
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return sandbox.launch(config, self.config.argv, env, self.config.cwd,
                                  stdin=null if stdin is None else stdin, stdout=out_w,
                                  stderr=err_w)
        finally:
            os.close(null)
            for fd in (self.config.console_fd, stdin):
                if fd is not None:
                    os.close(fd)
            self.config.console_fd = self.config.stdin_fd = None

    def _run_once(self, log: JsonFileLog) -> int:
        try:
            pid, out_r, err_r = self._spawn(log)
        except sandbox.LaunchError as exc:
            log.write("stderr", f"{exc}\n".encode())
            self._save(status="exited", pid=None, error=str(exc), started_at=_now(),
                       exit_code=sandbox.EXIT_SETUP_FAILED, finished_at=_now())
            return sandbox.EXIT_SETUP_FAILED
        pidfd = os.pidfd_open(pid)
        self._save(status="running", pid=pid, started_at=_now(), exit_code=None)
        streams = {out_r: "stdout", err_r: "stderr"}
        kill_at: float | None = None
        signalled = False
        code: int | None = None
        while code is None or streams:
            if self.stopping and not signalled and code is None:
                os.kill(pid, self.config.stop_signal)
                kill_at, signalled = time.monotonic() + self.config.stop_timeout, True
            timeout = None if kill_at is None else max(0.0, kill_at - time.monotonic())
            watched = [*streams, self._wake_r] + ([pidfd] if code is None else [])
            ready, _, _ = select.select(watched, [], [], 0.2 if code is not None else timeout)
            if code is not None and not ready:
                break  # exited; whatever still holds its pipes (a daemonized child) waits
            for fd in ready:
                if fd == self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 64)
                elif fd == pidfd:
                    _, status = os.waitpid(pid, 0)
                    code = os.waitstatus_to_exitcode(status)
                    code = 128 - code if code < 0 else code  # killed by a signal: 128+N
                else:
                    data = os.read(fd, READ_CHUNK)
                    if data:
                        log.write(streams[fd], data)
                    else:
                        del streams[fd]
                        os.close(fd)
            if kill_at is not None and code is None and time.monotonic() >= kill_at:
                os.kill(pid, signal.SIGKILL)
                kill_at = None
        for fd in streams:
            os.close(fd)
        os.close(pidfd)
        log.flush()
        self._save(exit_code=code, finished_at=_now())
        return int(code)
