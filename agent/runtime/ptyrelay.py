"""A real terminal for a container process, as docker gives ``-t``: the pty comes from
the container's own devpts (its master travels back to the caller over a socket,
SCM_RIGHTS), and the caller relays its terminal to it: raw mode while it runs, window
sizes along, EOF as the terminal's EOF character. Used by ``exec -t`` and ``run -t``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import socket
import termios
import threading
import tty as ttys
from collections.abc import Iterator

from agent.runtime import linux

DRAIN_MS = 100
"""Once the process has exited, the pty is read until it hangs up or stays quiet this long
(a daemon the command left behind may hold the terminal open for ever)."""
_CHUNK = 65536


def take_terminal(sock: socket.socket, uid: int, winsize: bytes | None) -> int:
    """A new pty of the container's devpts: its master goes to the caller; its slave,
    returned, is this (session leader) process's controlling terminal."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        linux.unlock_pty(master)
        if winsize is not None:
            fcntl.ioctl(master, termios.TIOCSWINSZ, winsize)
        slave = linux.open_pty_peer(master, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        socket.send_fds(sock, [b"\0"], [master])
    finally:
        os.close(master)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    if uid:  # as runc: the user owns its terminal (reopening /dev/pts/N works)
        with contextlib.suppress(PermissionError):
            os.fchown(slave, uid, -1)
    return slave



def receive_master(sock: socket.socket) -> int:
    """The pty master a container process sent over ``sock`` (see take_terminal)."""
    _, fds, _, _ = socket.recv_fds(sock, 1, 1, socket.MSG_CMSG_CLOEXEC)
    if not fds:  # the process sent its master before it could fail, or it reported
        raise OSError(errno.EPROTO, "the container process sent no terminal")
    return fds[0]


def relay_pty(sock: socket.socket, process: int, interactive: bool, stdin: int,
              stdout: int) -> None:
    """Relay the caller's terminal to the pty the container sends over ``sock`` until
    ``process`` (any pid: watched through a pidfd) has exited and the pty is drained."""
    relay_master(receive_master(sock), process, interactive, stdin, stdout)


def relay_master(master: int, process: int, interactive: bool, stdin: int,
                 stdout: int) -> None:
    """As :func:`relay_pty`, from a master already received (closed when done); the pty
    takes the caller's window size first."""
    try:
        exited = os.pidfd_open(process)
    except OSError:
        os.close(master)
        raise
    try:
        os.set_blocking(master, False)
        keyboard = stdin if interactive and os.isatty(stdin) else None
        terminal = terminal_of(stdout, stdin)
        size = window_size(terminal)
        if size is not None:
            fcntl.ioctl(master, termios.TIOCSWINSZ, size)
        with _raw(keyboard), _window_changes(terminal) as winch:
            _Relay(master, stdin if interactive else None, stdout, terminal).run(exited, winch)
    finally:
        os.close(master)
        os.close(exited)


def terminal_of(*fds: int) -> int | None:
    return next((fd for fd in fds if os.isatty(fd)), None)


def window_size(terminal: int | None) -> bytes | None:
    return None if terminal is None else fcntl.ioctl(terminal, termios.TIOCGWINSZ, bytes(8))


@contextlib.contextmanager
def _raw(fd: int | None) -> Iterator[None]:
    """The caller's keyboard in raw mode (keys, ^C included, go to the container), restored
    however the relay ends."""
    if fd is None:
        yield
        return
    saved = termios.tcgetattr(fd)
    ttys.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)  # never wait on a stalled terminal


@contextlib.contextmanager
def _window_changes(terminal: int | None) -> Iterator[int | None]:
    """An fd readable after each SIGWINCH, when there is a terminal to follow and this is
    the main thread (the only one Python lets handle signals)."""
    if terminal is None or threading.current_thread() is not threading.main_thread():
        yield None
        return
    read_end, write_end = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)

    def poke(_signum: int, _frame: object) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(write_end, b"\0")

    previous = signal.signal(signal.SIGWINCH, poke)
    try:
        yield read_end
    finally:
        signal.signal(signal.SIGWINCH, previous if previous is not None else signal.SIG_DFL)
        os.close(read_end)
        os.close(write_end)


class _Relay:
    """Caller's stdin to the master, the master to the caller's stdout, window sizes along,
    until the pty hangs up (or stays quiet) after the process exited. Input waits while
    the pty's input queue is full, so a process that does not read cannot deadlock us."""

    def __init__(self, master: int, stdin: int | None, stdout: int,
                 terminal: int | None) -> None:
        self.master, self.stdin, self.stdout, self.terminal = master, stdin, stdout, terminal
        self.pending = b""
        self.last = b"\n"

    def run(self, exited: int, winch: int | None) -> None:
        poller = select.poll()
        for fd in (exited, winch):
            if fd is not None:
                poller.register(fd, select.POLLIN)
        done = False
        while True:
            poller.register(self.master, select.POLLIN | (select.POLLOUT if self.pending else 0))
            if self.stdin is not None and not self.pending:
                poller.register(self.stdin, select.POLLIN)
            elif self.stdin is not None:  # not just no POLLIN: a hang-up is reported anyway
                with contextlib.suppress(KeyError):
                    poller.unregister(self.stdin)
            events = dict(poller.poll(DRAIN_MS if done else None))
            if not events:
                return
            if winch is not None and winch in events:
                os.read(winch, _CHUNK)
                size = window_size(self.terminal)
                if size is not None:
                    fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)
            if exited in events:  # stop feeding it; take what it left in the pty
                done = True
                poller.unregister(exited)
                self._stop_input(poller)
            if self.master in events and not self._output(events[self.master]):
                return
            if self.stdin is not None and self.stdin in events:
                self._input(poller, self.stdin)

    def _output(self, event: int) -> bool:
        if event & select.POLLOUT and self.pending:
            try:
                self.pending = self.pending[os.write(self.master, self.pending):]
            except BlockingIOError:
                pass
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                self.pending = b""  # nobody left to read it
        if not event & (select.POLLIN | select.POLLHUP | select.POLLERR):
            return True
        try:
            data = os.read(self.master, _CHUNK)
        except BlockingIOError:
            return True
        except OSError as exc:
            if exc.errno == errno.EIO:  # every slave fd is closed: the process is gone
                return False
            raise
        write_all(self.stdout, data)
        return bool(data)

    def _input(self, poller: select.poll, stdin: int) -> None:
        try:
            data = os.read(stdin, _CHUNK)
        except OSError as exc:
            if exc.errno != errno.EIO:  # a hung-up terminal reads as EOF
                raise
            data = b""
        if data:
            self.pending, self.last = data, data[-1:]
            return
        # EOF: the terminal's EOF character, twice after an unfinished line (the first
        # only hands the line over), as a user would type ^D to end the input.
        eof = termios.tcgetattr(self.master)[6][termios.VEOF]
        self.pending = eof if self.last in (b"\n", eof) else eof * 2
        self._stop_input(poller)

    def _stop_input(self, poller: select.poll) -> None:
        if self.stdin is not None:
            with contextlib.suppress(KeyError):
                poller.unregister(self.stdin)
            self.stdin = None


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:  # a caller's non-blocking fd
            select.select([], [fd], [])
