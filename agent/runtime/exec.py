"""``docker exec`` for pyprov: a process started inside a running container.

    run_exec (the caller)
    └── joiner     joins the container's cgroups, then its ipc, uts, net, pid and mount
        │          namespaces by fds opened beforehand; a pid namespace applies to
        │          children only, so it forks, then waits and exits with the status
        └── process  pid N of the container: its terminal, working directory, user,
                     capabilities and no_new_privs, then ``execve``

The joiner stays in the host's pid namespace and is the caller's own child, so the
caller learns the process's status by waiting for it (the joiner exits with the
process's code, 128+N when a signal N killed it).

``setns`` into a mount namespace puts the root and the working directory at that
namespace's root, which is the container's root only because its init pivot_root'ed
there: that is checked against ``/proc/PID/root``, never assumed. Errors before
``execve`` travel over a CLOEXEC pipe, as ``subprocess`` does. The joiner's (it could
not enter the container) raise :class:`ExecError`; the process's (working directory,
user, command) are printed on the caller's stderr as docker prints them, with docker's
codes: 127 command not found, 126 for anything else that stopped it starting.

With a tty the terminal is the container's own: the process opens /dev/ptmx once in the
container's mount namespace, makes the slave its controlling terminal and stdio, and
hands the master back over a socketpair (SCM_RIGHTS) for the caller to relay.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from agent.runtime import linux, ptyrelay
from agent.runtime.records import ContainerError

EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
DEFAULT_CAPABILITIES = linux.capability_mask(linux.DOCKER_DEFAULT_CAPS)
NAMESPACES = (("ipc", linux.CLONE_NEWIPC), ("uts", linux.CLONE_NEWUTS),
              ("net", linux.CLONE_NEWNET), ("pid", linux.CLONE_NEWPID),
              ("mnt", linux.CLONE_NEWNS))
"""In the order they are joined: the mount namespace last, as it hides the host's /proc."""
MAX_REPORT = 4096
_JOIN = b"join"
_O_PATH = getattr(os, "O_PATH", 0o10000000)


class ContainerNotRunning(ContainerError):
    """``pid`` is not a running container's init: ``reason`` says what it is instead."""

    def __init__(self, pid: int, reason: str) -> None:
        super().__init__(f"no running container has its init at pid {pid}: {reason}")
        self.pid, self.reason = pid, reason

    def __reduce__(self) -> tuple[type, tuple[int, str]]:
        return type(self), (self.pid, self.reason)


class ExecError(ContainerError):
    """Nothing could be started in the container of init ``pid``, for ``reason``."""

    def __init__(self, pid: int, reason: str) -> None:
        super().__init__(f"cannot exec in the container of pid {pid}: {reason}")
        self.pid, self.reason = pid, reason

    def __reduce__(self) -> tuple[type, tuple[int, str]]:
        return type(self), (self.pid, self.reason)


@dataclass(frozen=True)
class ExecRequest:
    pid: int                      # the container's init, as the host sees it
    argv: tuple[str, ...]
    env: tuple[str, ...]          # complete KEY=VALUE list (container env, then -e)
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()
    capabilities: int = DEFAULT_CAPABILITIES
    tty: bool = False
    interactive: bool = False     # -i: forward stdin; without it the process gets /dev/null
    cgroup_procs: tuple[str, ...] = ()   # cgroup.procs files the process joins first


@dataclass(frozen=True)
class _Setup:
    """What the caller hands its children: fds, and the terminal's size to start with."""

    stdio: tuple[int, int, int]
    err_w: int
    pty_socket: socket.socket | None
    winsize: bytes | None
    container: tuple[int, ...]    # the namespaces' fds in NAMESPACES order, then the root


def require_container_init(pid: int) -> None:
    """Raise :class:`ContainerNotRunning` unless ``pid`` is alive and the init (pid 1) of
    a pid namespace below ours: a recycled pid of a host process is refused."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines() if pid > 0 else []:
            key, _, value = line.partition(":\t")
            fields[key] = value
    if not fields:
        raise ContainerNotRunning(pid, "no such process")
    if fields.get("State", "")[:1] in ("Z", "X"):
        raise ContainerNotRunning(pid, "it has exited")
    nspid = fields.get("NSpid", "").split()
    if len(nspid) < 2 or nspid[-1] != "1":
        raise ContainerNotRunning(pid, "it is not the init of a container's pid namespace")


def run_exec(request: ExecRequest, *, stdin: int = 0, stdout: int = 1, stderr: int = 2) -> int:
    """Run ``request.argv`` in the container and return its exit code (see the module)."""
    if not request.argv:
        raise ExecError(request.pid, "no command")
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    with os.fdopen(err_r, "rb") as reports, contextlib.ExitStack() as ours:
        pty_socket = None
        with contextlib.ExitStack() as theirs:  # the children's: closed here once forked
            theirs.callback(os.close, err_w)
            container = _open_container(request.pid)
            for fd in container:
                theirs.callback(os.close, fd)
            devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            theirs.callback(os.close, devnull)
            child_socket = None
            if request.tty:
                pty_socket, child_socket = socket.socketpair()
                ours.enter_context(pty_socket)
                theirs.enter_context(child_socket)
            terminal = ptyrelay.terminal_of(stdout, stdin)
            winsize = ptyrelay.window_size(terminal) if request.tty else None
            setup = _Setup((stdin if request.interactive else devnull, stdout, stderr), err_w,
                           child_socket, winsize, container)
            joiner = os.fork()
            if joiner == 0:
                try:
                    _join(request, setup)
                finally:
                    os._exit(EXIT_NOT_EXECUTABLE)
        report = reports.read(MAX_REPORT)  # EOF when the process execs
        if report:
            return _failed(request, joiner, report, stderr)
        if pty_socket is not None:
            ptyrelay.relay_pty(pty_socket, joiner, request.interactive, stdin, stdout)
        return _exit_code(os.waitpid(joiner, 0)[1])


def _open_container(pid: int) -> tuple[int, ...]:
    require_container_init(pid)
    fds: list[int] = []
    try:
        for name, _ in NAMESPACES:
            fds.append(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC))
        fds.append(os.open(f"/proc/{pid}/root", _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        if exc.errno in (errno.ENOENT, errno.ESRCH):
            raise ContainerNotRunning(pid, "it has exited") from exc
        raise
    return tuple(fds)


def _failed(request: ExecRequest, joiner: int, report: bytes, stderr: int) -> int:
    os.waitpid(joiner, 0)
    kind, _, detail = report.partition(b"\0")
    reason = detail.decode("utf-8", "replace")
    if kind == _JOIN:
        require_container_init(request.pid)  # it may have died meanwhile
        raise ExecError(request.pid, reason)
    ptyrelay.write_all(stderr, "OCI runtime exec failed: exec failed: unable to start container "
                       f"process: {reason}\n".encode())
    return int(kind)


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


# -- in the children -----------------------------------------------------------------------

def _join(request: ExecRequest, setup: _Setup) -> NoReturn:
    """The joiner: into the container, fork the process, wait for it. Never returns."""
    step = "cannot prepare"
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        socket_fd = [setup.pty_socket.fileno()] if setup.pty_socket else []
        _close_fds_but(*setup.stdio, setup.err_w, *socket_fd, *setup.container)
        for procs in request.cgroup_procs:
            step = f"cannot join the cgroup of {procs}"
            Path(procs).write_text(str(os.getpid()))
        step = "cannot join the container's namespaces"
        *namespaces, root = setup.container
        for fd, (_, nstype) in zip(namespaces, NAMESPACES, strict=True):
            linux.setns(fd, nstype)
        _check_root(request.pid, root)
        step = "cannot start a process in the container"
        process = os.fork()
        if process == 0:
            try:
                _start(request, setup)
            finally:
                os._exit(EXIT_NOT_EXECUTABLE)
    except BaseException as exc:
        reason = exc.reason if isinstance(exc, ExecError) else f"{step}: {_why(exc)}"
        _report(setup.err_w, _JOIN, reason)
        os._exit(EXIT_NOT_EXECUTABLE)
    _close_fds_but()  # hold nothing of the caller's or the container's while waiting
    os._exit(_exit_code(os.waitpid(process, 0)[1]))


def _check_root(pid: int, root: int) -> None:
    here, there = Path("/").stat(), os.fstat(root)
    if (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino):
        raise ExecError(pid, "the container's root is not the root of its mount namespace "
                             "(its init did not pivot_root)")


def _start(request: ExecRequest, setup: _Setup) -> NoReturn:
    """The process, inside the container: set it up and exec. Never returns."""
    step = ""
    try:
        for signum in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}:
            with contextlib.suppress(OSError, ValueError):
                signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.setsid()  # never in the caller's session: no job control over, no TIOCSTI into it
        stdio = [os.dup(fd) for fd in setup.stdio]  # above 2, so any order of 0-2 works
        step = "cannot set the capabilities"
        linux.limit_capabilities(request.capabilities)
        if setup.pty_socket is not None:
            step = "cannot allocate a terminal"
            stdio = [ptyrelay.take_terminal(setup.pty_socket, request.uid, setup.winsize)] * 3
        for target, source in enumerate(stdio):
            os.dup2(source, target)
        _close_fds_but(setup.err_w)
        step = f'chdir to cwd ("{request.cwd}") failed'
        os.chdir(request.cwd)
        step = f"cannot set user {request.uid}:{request.gid}"
        os.setgroups(list(request.groups))
        os.setgid(request.gid)
        os.setuid(request.uid)
        linux.set_no_new_privs()
        step = "exec"
        _execute(request.argv, _environ(request.env))
    except BaseException as exc:
        code, reason = _start_failure(step, request.argv[0], exc)
        _report(setup.err_w, str(code).encode(), reason)
        os._exit(code)


def _environ(entries: tuple[str, ...]) -> dict[str, str]:
    """Later entries win; a bare ``KEY`` removes KEY (docker's ``ReplaceOrAppendEnvValues``)."""
    environ: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if sep:
            environ[key] = value
        else:
            environ.pop(key, None)
    return environ


def _execute(argv: tuple[str, ...], environ: dict[str, str]) -> NoReturn:
    """``execve``, searching the PATH of ``environ`` (none: nothing is searched) as Go's
    ``LookPath`` does for docker: a match that is not executable is skipped."""
    if "/" in argv[0]:
        os.execve(argv[0], argv, environ)  # noqa: S606
    failure: OSError | None = None
    path = environ.get("PATH", "")
    for directory in path.split(":") if path else ():
        try:
            os.execve(f"{directory or '.'}/{argv[0]}", argv, environ)  # noqa: S606
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EACCES) and not failure:
                failure = exc
    raise failure or FileNotFoundError(errno.ENOENT, "executable file not found in $PATH")


def _start_failure(step: str, name: str, exc: BaseException) -> tuple[int, str]:
    reason = _why(exc)
    if step != "exec":
        return EXIT_NOT_EXECUTABLE, f"{step}: {reason}" if step else reason
    if isinstance(exc, OSError) and exc.errno == errno.ENOENT:
        detail = "executable file not found in $PATH" if "/" not in name else \
            f"stat {name}: no such file or directory"
        return EXIT_NOT_FOUND, f'exec: "{name}": {detail}'
    return EXIT_NOT_EXECUTABLE, f'exec: "{name}": {reason}'


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


def _report(err_w: int, kind: bytes, reason: str) -> None:
    with contextlib.suppress(OSError):
        os.write(err_w, (kind + b"\0" + reason.encode())[:MAX_REPORT])


def _close_fds_but(*keep: int) -> None:
    """Close every fd above 2 except ``keep``: the caller's other fds never reach the
    container, whether or not they are close-on-exec."""
    first = 3
    for fd in sorted({fd for fd in keep if fd >= first}):
        if fd > first:
            _close_range(first, fd - 1)
        first = fd + 1
    _close_range(first, 0xFFFFFFFF)


def _close_range(first: int, last: int) -> None:
    try:
        linux.close_range(first, last)
    except OSError:  # before Linux 5.9: the fds that are open, one by one
        for entry in Path("/proc/self/fd").iterdir():
            if first <= int(entry.name) <= last:
                with contextlib.suppress(OSError):
                    os.close(int(entry.name))
