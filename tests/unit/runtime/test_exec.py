"""``run_exec`` against real little containers: Debian's static busybox in a temp rootfs,
started here as pid 1 of new mount, pid, uts, ipc and net namespaces, pivot_root'ed, with
/proc and a devpts of its own (``start_container``, shared with the ``top`` tests).

Every container dies with its fixture (SIGKILL to its init empties its pid namespace, and
its mounts live only in its own mount namespace); a watchdog kills it if an exec hangs,
so a regression fails the test rather than the run.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import termios
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from agent.runtime import linux
from agent.runtime.exec import (
    DEFAULT_CAPABILITIES,
    ContainerNotRunning,
    ExecError,
    ExecRequest,
    run_exec,
)
from agent.runtime.top import processes

BUSYBOX = Path("/bin/busybox")
HOSTNAME = "exec-box"
ENV = ("PATH=/usr/bin:/bin", "HOME=/root")
WATCHDOG = 60.0
"""Seconds before a hung exec has its container killed: a failsafe, never an assertion."""


# -- a real little container ---------------------------------------------------------------

@dataclass
class Container:
    pid: int        # the init (``sleep 1000``), as the host sees it
    launcher: int   # its parent, our child: it waits for the init

    def stop(self) -> None:
        with suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)  # its pid namespace dies with it
        with suppress(ChildProcessError):
            os.waitpid(self.launcher, 0)


def make_rootfs(root: Path) -> Path:
    """busybox with a link per applet, a passwd, a marker, a tool off the default PATH."""
    for name in ("bin", "etc", "proc", "dev/pts", "tmp/work", "opt/tools", "root"):
        (root / name).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    for device in ("null", "tty"):
        (root / "dev" / device).touch()  # mount points for the host's nodes
    (root / "dev/ptmx").symlink_to("pts/ptmx")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                     "app:x:1000:1000::/tmp:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\napp:x:1000:\nstaff:x:50:app\n")
    (root / "etc/container-marker").write_text("inside the container\n")
    tool = root / "opt/tools/hello"
    tool.write_text("#!/bin/sh\necho hello from tools\n")
    tool.chmod(0o755)
    (root / "opt/tools/cat").write_text("not executable: the search goes on\n")
    (root / "etc-link").symlink_to("/etc")  # absolute: the container's /etc, not the host's
    return root


def start_container(rootfs: Path, hostname: str = HOSTNAME, *, pivot: bool = True) -> Container:
    """Returns once the init has exec'd (a CLOEXEC pipe's EOF), or raises its error."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
    launcher = os.fork()
    if launcher == 0:
        try:
            _launch(rootfs, hostname, pivot, ready_w, pid_w)
        finally:
            os._exit(1)
    os.close(ready_w)
    os.close(pid_w)
    with os.fdopen(pid_r, "rb") as pipe:
        pid = pipe.read()
    with os.fdopen(ready_r, "rb") as pipe:
        error = pipe.read()
    container = Container(int(pid or 0), launcher)
    if error or not pid:
        container.stop()
        raise RuntimeError(f"the test container did not start: {error.decode()}")
    return container


def _launch(rootfs: Path, hostname: str, pivot: bool, ready_w: int, pid_w: int) -> NoReturn:
    try:
        linux.set_parent_death_signal(signal.SIGKILL)
        _stdio_to_null()
        _close_all_but(ready_w, pid_w)
        linux.unshare(linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC
                      | linux.CLONE_NEWPID | linux.CLONE_NEWNET)
        init = os.fork()
        if init == 0:
            try:
                _init(rootfs, hostname, pivot, ready_w)
            finally:
                os._exit(1)
        os.close(ready_w)
        os.write(pid_w, str(init).encode())
        os.close(pid_w)
        os.waitpid(init, 0)
    except BaseException as exc:
        with suppress(OSError):
            os.write(ready_w, repr(exc).encode())
    os._exit(0)


def _init(rootfs: Path, hostname: str, pivot: bool, ready_w: int) -> None:
    try:
        linux.set_parent_death_signal(signal.SIGKILL)
        root = str(rootfs)
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        linux.mount(root, root, None, linux.MS_BIND | linux.MS_REC)
        linux.mount("proc", f"{root}/proc", "proc",
                    linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
        linux.mount("devpts", f"{root}/dev/pts", "devpts", linux.MS_NOSUID | linux.MS_NOEXEC,
                    "newinstance,ptmxmode=0666,mode=0620")
        for device in ("null", "tty"):
            linux.mount(f"/dev/{device}", f"{root}/dev/{device}", None, linux.MS_BIND)
        linux.sethostname(hostname)
        os.chdir(root)
        if pivot:
            linux.pivot_root(".", ".")
            linux.umount2(".", linux.MNT_DETACH)
        else:
            os.chroot(".")
        os.chdir("/")
        os.execv("/bin/busybox", ["sleep", "1000"])  # noqa: S606
    except BaseException as exc:
        os.write(ready_w, repr(exc).encode())


def _stdio_to_null() -> None:
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _close_all_but(*keep: int) -> None:
    first = 3
    for fd in sorted(keep):
        if fd > first:
            linux.close_range(first, fd - 1)
        first = fd + 1
    linux.close_range(first)


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = make_rootfs(tmp_path_factory.mktemp("exec") / "rootfs")
    yield root
    shutil.rmtree(root.parent)


@contextmanager
def running(rootfs: Path, *, pivot: bool = True) -> Iterator[Container]:
    container = start_container(rootfs, pivot=pivot)
    try:
        yield container
    finally:
        container.stop()


@pytest.fixture(scope="module")
def container(rootfs: Path) -> Iterator[Container]:
    with running(rootfs) as started:
        yield started


# -- running commands ----------------------------------------------------------------------

@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str


@contextmanager
def watchdog(container: Container) -> Iterator[None]:
    timer = threading.Timer(WATCHDOG, os.kill, (container.pid, signal.SIGKILL))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def run(container: Container, *argv: str, stdin: int | None = None, **fields: Any) -> Done:
    fields.setdefault("env", ENV)
    request = ExecRequest(pid=container.pid, argv=argv, **fields)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            watchdog(container):
        code = run_exec(request, stdin=stdin if stdin is not None else 0,
                        stdout=out.fileno(), stderr=err.fileno())
        out.seek(0)
        err.seek(0)
        return Done(code, out.read().decode(), err.read().decode())


def status_fields(text: str) -> dict[str, str]:
    return {key: value.strip() for key, _, value in
            (line.partition(":") for line in text.splitlines())}


def filled_pipe(data: bytes) -> int:
    """The read end of a pipe holding ``data``, its write end closed."""
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    return read_end


# -- what the process sees -----------------------------------------------------------------

def test_joins_every_namespace_of_the_container(container: Container) -> None:
    names = ("ipc", "uts", "net", "pid", "mnt")
    script = "; ".join(f"readlink /proc/self/ns/{name}" for name in names)
    done = run(container, "sh", "-c", script)
    assert done.code == 0, done.err
    expected = [str(Path(f"/proc/{container.pid}/ns/{name}").readlink()) for name in names]
    assert done.out.split() == expected
    assert not set(expected) & {str(Path(f"/proc/self/ns/{name}").readlink()) for name in names}


def test_sees_the_containers_hostname_and_init(container: Container) -> None:
    assert socket.gethostname() != HOSTNAME
    assert run(container, "hostname").out == f"{HOSTNAME}\n"
    init = run(container, "cat", "/proc/1/cmdline").out
    assert init == "sleep\x001000\x00" == Path(f"/proc/{container.pid}/cmdline").read_text()
    shell = run(container, "sh", "-c", "echo $$; ls /proc | grep -E '^[0-9]+$'").out.split()
    assert int(shell[0]) > 1  # a process of the container's pid namespace ...
    assert "1" in shell[1:]  # ... which is not ours
    assert str(os.getpid()) not in shell[1:]


def test_sees_the_containers_filesystem(container: Container, rootfs: Path) -> None:
    assert run(container, "cat", "/etc/container-marker").out == "inside the container\n"
    listing = run(container, "ls", "-a", "/").out.split()
    assert sorted(listing) == sorted([".", "..", *(p.name for p in rootfs.iterdir())])
    assert run(container, "test", "-e", str(rootfs)).code == 1  # the host's path: not there


def test_the_environment_is_exactly_the_one_given(container: Container) -> None:
    env = ("PATH=/bin", "GREETING=hello there", "EMPTY=", "TWICE=first", "GONE=x",
           "TWICE=second", "GONE")
    done = run(container, "env", env=env)
    assert done.out.splitlines() == ["PATH=/bin", "GREETING=hello there", "EMPTY=",
                                     "TWICE=second"]


def test_the_command_is_searched_on_the_given_path(container: Container) -> None:
    found = run(container, "hello", env=("PATH=/opt/tools:/bin",))
    assert (found.code, found.out) == (0, "hello from tools\n")
    skipped = run(container, "cat", "/etc/container-marker", env=("PATH=/opt/tools:/bin",))
    assert (skipped.code, skipped.out) == (0, "inside the container\n")  # as Go's LookPath
    missing = run(container, "hello", env=("PATH=/bin",))
    assert missing.code == 127
    assert missing.err == ("OCI runtime exec failed: exec failed: unable to start container "
                           'process: exec: "hello": executable file not found in $PATH\n')
    assert run(container, "hello", env=()).code == 127  # no PATH: nothing is searched


def test_user_and_groups_are_applied(container: Container) -> None:
    done = run(container, "sh", "-c", "id -u; id -g; id -G", uid=1000, gid=1000,
               groups=(1000, 50))
    assert done.out.split("\n") == ["1000", "1000", "1000 50", ""]
    assert run(container, "id", "-G").out == "0\n"  # root's supplementary groups: none


def test_working_directory_is_resolved_in_the_container(container: Container) -> None:
    assert run(container, "pwd", cwd="/tmp/work").out == "/tmp/work\n"
    inside = run(container, "sh", "-c", "pwd -P; cat container-marker", cwd="/etc-link")
    assert inside.out == "/etc\ninside the container\n"
    missing = run(container, "pwd", cwd="/nowhere")
    assert missing.code == 126
    assert 'chdir to cwd ("/nowhere") failed: no such file or directory' in missing.err


@pytest.mark.parametrize(("argv", "code", "message"), [
    (("true",), 0, ""),
    (("sh", "-c", "exit 3"), 3, ""),
    (("no-such-command",), 127, 'exec: "no-such-command": executable file not found in $PATH'),
    (("/bin/nope",), 127, 'exec: "/bin/nope": stat /bin/nope: no such file or directory'),
    (("/etc/container-marker",), 126, 'exec: "/etc/container-marker": permission denied'),
    (("/tmp",), 126, 'exec: "/tmp": permission denied'),
    (("sh", "-c", "kill -INT $$"), 130, ""),
    (("sh", "-c", "kill -KILL $$"), 137, ""),
])
def test_exit_codes(container: Container, argv: tuple[str, ...], code: int,
                    message: str) -> None:
    done = run(container, *argv)
    assert done.code == code
    assert message in done.err
    assert bool(done.err) == bool(message)


def test_stdin_is_forwarded_with_interactive(container: Container) -> None:
    stdin = filled_pipe(b"hello from stdin\n")
    try:
        done = run(container, "cat", stdin=stdin, interactive=True)
    finally:
        os.close(stdin)
    assert (done.code, done.out) == (0, "hello from stdin\n")


def test_stdin_is_dev_null_without_interactive(container: Container) -> None:
    stdin = filled_pipe(b"not for the container\n")
    try:
        done = run(container, "sh", "-c", "cat; readlink /proc/self/fd/0", stdin=stdin)
        left = os.read(stdin, 100)
    finally:
        os.close(stdin)
    assert (done.code, done.out) == (0, "/dev/null\n")
    assert left == b"not for the container\n"  # the caller's stdin was never read


def test_capabilities_are_bounded_and_privileges_cannot_grow(container: Container) -> None:
    mask = f"{DEFAULT_CAPABILITIES:016x}"
    root = status_fields(run(container, "cat", "/proc/self/status").out)
    assert root["CapBnd"] == root["CapEff"] == root["CapPrm"] == mask
    assert root["CapInh"] == root["CapAmb"] == "0" * 16
    assert root["NoNewPrivs"] == "1"
    assert root["SigIgn"] == root["SigBlk"] == "0" * 16  # Python's SIG_IGN did not leak in
    user = status_fields(run(container, "cat", "/proc/self/status", uid=1000, gid=1000).out)
    assert user["CapBnd"] == mask
    assert user["CapEff"] == user["CapPrm"] == "0" * 16
    assert user["NoNewPrivs"] == "1"
    chown_only = linux.capability_mask(("CHOWN", "SETUID", "SETGID"))
    narrow = status_fields(run(container, "cat", "/proc/self/status",
                               capabilities=chown_only).out)
    assert narrow["CapBnd"] == narrow["CapEff"] == f"{chown_only:016x}"


def test_no_descriptor_of_the_caller_leaks_in(container: Container) -> None:
    leaky = os.open("/dev/null", os.O_RDONLY)  # inheritable, high: what close_fds guards
    high = os.dup2(leaky, 77, inheritable=True)
    cloexec = os.open("/dev/null", os.O_RDONLY)
    try:
        done = run(container, "ls", "/proc/self/fd")
    finally:
        for fd in (leaky, high, cloexec):
            os.close(fd)
    assert done.out.split() == ["0", "1", "2", "3"]  # 3: the directory ls is reading


def our_fds_and_children() -> tuple[set[str], set[str]]:
    """Our open fds, and the children of the main thread (the one that forks here)."""
    children = Path(f"/proc/self/task/{os.getpid()}/children").read_text().split()
    return {entry.name for entry in Path("/proc/self/fd").iterdir()}, set(children)


def test_the_caller_is_left_with_no_fd_and_no_child(container: Container, rootfs: Path) -> None:
    before = our_fds_and_children()
    assert run(container, "true").code == 0
    assert run(container, "no-such-command").code == 127
    with pytest.raises(ExecError):
        run(container, "true", cgroup_procs=("/nonexistent/cgroup.procs",))
    with running(rootfs) as gone:
        pass
    with pytest.raises(ContainerNotRunning):
        run(gone, "true")
    run_in_terminal(container, "true")
    assert our_fds_and_children() == before


def test_the_process_leads_its_own_session(container: Container) -> None:
    done = run(container, "sh", "-c", "echo $$; cut -d' ' -f6 /proc/$$/stat")
    pid, session = done.out.split()
    assert pid == session  # never in the caller's session, so never at its terminal


def test_the_process_joins_the_cgroups_given(container: Container) -> None:
    parent = Path("/sys/fs/cgroup/pids")
    if not (parent / "cgroup.procs").exists():
        pytest.fail("this host has no cgroup v1 pids hierarchy to test with")
    group = parent / f"pyprov-test-{secrets.token_hex(4)}"
    group.mkdir()
    try:
        done = run(container, "cat", "/proc/self/cgroup",
                   cgroup_procs=(str(group / "cgroup.procs"),))
        assert f"pids:/{group.name}\n" in done.out
        assert (group / "cgroup.procs").read_text() == ""  # the joiner went with it
    finally:
        group.rmdir()


def test_a_cgroup_that_cannot_be_joined_is_an_error(container: Container,
                                                    tmp_path: Path) -> None:
    missing = str(tmp_path / "gone/cgroup.procs")
    with pytest.raises(ExecError) as raised:
        run(container, "true", cgroup_procs=(missing,))
    assert raised.value.reason == f"cannot join the cgroup of {missing}: no such file or directory"


# -- containers that are not there ---------------------------------------------------------

def test_a_dead_container_is_refused(rootfs: Path) -> None:
    with running(rootfs) as gone:
        pass
    with pytest.raises(ContainerNotRunning) as raised:
        run_exec(ExecRequest(pid=gone.pid, argv=("true",), env=ENV))
    assert raised.value.pid == gone.pid


def test_a_process_that_is_no_container_init_is_refused() -> None:
    with pytest.raises(ContainerNotRunning, match="not the init"):
        run_exec(ExecRequest(pid=os.getpid(), argv=("true",), env=ENV))
    with pytest.raises(ContainerNotRunning, match="no such process"):
        run_exec(ExecRequest(pid=0, argv=("true",), env=ENV))


def test_a_container_without_its_own_root_is_refused(rootfs: Path) -> None:
    with running(rootfs, pivot=False) as chrooted, pytest.raises(ExecError) as raised:
        run_exec(ExecRequest(pid=chrooted.pid, argv=("true",), env=ENV))
    assert "not the root of its mount namespace" in raised.value.reason


# -- a real terminal -----------------------------------------------------------------------

@dataclass
class Session:
    code: int
    output: str          # what the caller's terminal showed, \r removed
    before: list[Any]    # the caller's terminal modes before and after
    after: list[Any]


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def run_in_terminal(container: Container, *argv: str, react: Callable[[str, int], None]
                    | None = None, size: tuple[int, int] = (24, 80), stdin: int | None = None,
                    **fields: Any) -> Session:
    """``run_exec`` with a pty of the test as the caller's terminal, in the main thread
    (SIGWINCH is the main thread's); a thread reads what the terminal shows, calling
    ``react(shown_so_far, caller_master)`` after each read."""
    master, slave = os.openpty()
    set_size(slave, *size)
    shown = bytearray()
    failures: list[BaseException] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError as exc:  # EIO: every slave fd is closed
                if exc.errno != errno.EIO:
                    failures.append(exc)
                return
            if not data:
                return
            shown.extend(data)
            try:
                if react is not None:
                    react(shown.decode(errors="replace"), slave)
            except BaseException as exc:  # fail the test now, not at the watchdog
                failures.append(exc)
                os.kill(container.pid, signal.SIGKILL)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        before = termios.tcgetattr(slave)
        with watchdog(container):
            code = run_exec(ExecRequest(pid=container.pid, argv=argv, env=ENV, tty=True,
                                        **fields), stdin=slave if stdin is None else stdin,
                            stdout=slave, stderr=slave)
        after = termios.tcgetattr(slave)
    finally:
        os.close(slave)
        reader.join()
        os.close(master)
    if failures:
        raise failures[0]
    return Session(code, shown.decode(errors="replace").replace("\r", ""), before, after)


def test_tty_is_a_terminal_of_the_containers_devpts(container: Container) -> None:
    session = run_in_terminal(container, "sh", "-c", "tty; test -t 0 && test -t 1 && "
                              "test -t 2 && echo all-terminals; ls /dev/pts; stty size",
                              size=(33, 111))
    assert session.code == 0
    lines = session.output.splitlines()
    assert lines[0].startswith("/dev/pts/")  # ttyname() found it in the container's /dev
    assert lines[1] == "all-terminals"
    assert sorted(lines[2].split()) == [lines[0].removeprefix("/dev/pts/"), "ptmx"]
    assert lines[3] == "33 111"  # the caller's window size, from the start
    assert session.after == session.before  # not interactive: the terminal is left alone


def test_tty_belongs_to_the_user_and_is_the_controlling_terminal(container: Container) -> None:
    session = run_in_terminal(container, "sh", "-c",
                              'stat -c %u "$(tty)"; : </dev/tty && echo controlling',
                              uid=1000, gid=1000)
    assert session.output.splitlines() == ["1000", "controlling"]


def test_window_changes_are_forwarded_in_raw_mode(container: Container) -> None:
    main = threading.main_thread().ident
    assert main == threading.get_ident()
    raw: list[bool] = []

    def resize_once(shown: str, caller: int) -> None:
        if "ready" in shown and not raw:
            raw.append(not termios.tcgetattr(caller)[3] & (termios.ICANON | termios.ECHO))
            set_size(caller, 44, 132)
            signal.pthread_kill(main, signal.SIGWINCH)  # as the kernel would on a resize

    session = run_in_terminal(
        container, "sh", "-c",
        "stty size; trap 'stty size; kill $! 2>/dev/null; exit 7' WINCH; echo ready; "
        "sleep 1000 & wait", react=resize_once, interactive=True)
    assert session.code == 7  # only the trap ends it: the container saw SIGWINCH
    assert session.output.splitlines() == ["24 80", "ready", "44 132"]
    assert raw == [True]
    assert session.after == session.before  # restored


def test_input_and_its_end_are_forwarded_to_the_terminal(container: Container) -> None:
    stdin = filled_pipe(b"first line\nunfinished")
    try:
        session = run_in_terminal(container, "sh", "-c",
                                  'read line; echo "got:$line"; cat; echo; echo end',
                                  stdin=stdin, interactive=True)
    finally:
        os.close(stdin)
    assert session.code == 0  # cat saw the end of its input
    assert "got:first line\n" in session.output
    assert session.output.count("unfinished") == 2  # the terminal's echo, and cat's copy
    assert session.output.endswith("\nend\n")


def test_a_terminal_relays_much_input_and_output_without_deadlock(container: Container) -> None:
    lines = b"".join(b"%05d %s\n" % (n, b"x" * 94) for n in range(10000))  # 1 MB
    stdin, feed = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(feed, lines), os.close(feed)))

    def feed_when_ready(shown: str, _caller: int) -> None:
        if "ready" in shown and not writer.is_alive() and writer.ident is None:
            writer.start()  # echo is off by now: the output is exactly the process's

    try:  # the process writes 20000 lines before it reads any input: relaying must go on
        session = run_in_terminal(container, "sh", "-c",
                                  "stty -echo; echo ready; seq 1 20000; wc -l",
                                  react=feed_when_ready, stdin=stdin, interactive=True)
    finally:
        if writer.ident is not None:
            writer.join()
        else:
            os.close(feed)
        os.close(stdin)
    assert session.code == 0
    assert session.output.splitlines() == ["ready", *map(str, range(1, 20001)), "10000"]


def test_the_callers_terminal_is_restored_when_the_relay_fails(container: Container) -> None:
    master, keyboard = os.openpty()
    gone_r, gone_w = os.pipe()
    os.close(gone_r)  # the caller's stdout: nobody reads it any more
    try:
        before = termios.tcgetattr(keyboard)
        with watchdog(container), pytest.raises(BrokenPipeError):
            run_exec(ExecRequest(pid=container.pid, argv=("sh", "-c", "echo out; sleep 1000"),
                                 env=ENV, tty=True, interactive=True),
                     stdin=keyboard, stdout=gone_w, stderr=gone_w)
        assert termios.tcgetattr(keyboard) == before
    finally:
        for fd in (master, keyboard, gone_w):
            os.close(fd)


def test_a_daemon_holding_the_terminal_does_not_hold_the_exec(rootfs: Path) -> None:
    with running(rootfs) as own:  # the daemon dies with it
        session = run_in_terminal(own, "sh", "-c", "trap '' HUP; sleep 1000 & echo bye; exit 4")
        daemon = [row.cmd for row in processes(own.pid) if row.pid != own.pid]
    assert (session.code, session.output) == (4, "bye\n")
    assert len(daemon) == 1  # still there, holding the terminal (sleep, or sh about to be)
    assert not daemon[0].endswith("<defunct>")
