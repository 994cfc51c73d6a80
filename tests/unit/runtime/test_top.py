"""``docker top`` against a real little container (the exec tests' busybox one): its
init, what exec started in it and their children, as the host numbers them, and nothing of
the host's."""

from __future__ import annotations

import os
import re
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from agent.runtime.exec import ContainerNotRunning, ExecRequest, run_exec
from agent.runtime.top import TITLES, ProcessRow, format_table, processes
from tests.unit.runtime.test_exec import ENV, Container, make_rootfs, running


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    with running(make_rootfs(tmp_path / "rootfs")) as started:
        yield started


def namespace_pid(pid: int) -> int:
    """``pid`` as its innermost pid namespace numbers it."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^NSpid:.*\s(\d+)$", status, re.MULTILINE).group(1))  # type: ignore[union-attr]


class Exec(threading.Thread):
    """``run_exec`` of a long-running command in a thread; its host pid is found through
    a pid file the command writes inside the container."""

    def __init__(self, container: Container, script: str, **fields: object) -> None:
        super().__init__()
        self.request = ExecRequest(pid=container.pid, argv=("sh", "-c", script), env=ENV,
                                   **fields)  # type: ignore[arg-type]
        self.code: int | None = None

    def run(self) -> None:
        with tempfile.TemporaryFile() as out:
            self.code = run_exec(self.request, stdout=out.fileno(), stderr=out.fileno())


def wait_for_file(path: Path) -> str:
    deadline = time.monotonic() + 30
    while not path.exists() or not path.read_text().endswith("\n"):
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.01)
    return path.read_text()


def wait_for_row(container: Container, cmd: str) -> ProcessRow:
    """The row of the container's process running ``cmd`` (once it has exec'd it)."""
    deadline = time.monotonic() + 30
    while True:
        found = [row for row in processes(container.pid) if row.cmd == cmd]
        if found:
            assert len(found) == 1
            return found[0]
        assert time.monotonic() < deadline, f"{cmd} never ran"
        time.sleep(0.01)


def kill_all_but_init(container: Container) -> None:
    for row in processes(container.pid):
        if row.pid != container.pid:
            with suppress(ProcessLookupError):
                os.kill(row.pid, signal.SIGKILL)


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_lists_the_init_and_exec_processes_as_the_host_numbers_them(
        container: Container, tmp_path: Path) -> None:
    started = Exec(container, "sleep 998 & echo $$ $! > /tmp/pids; wait")
    started.start()
    try:
        shell_inside, sleep_inside = map(int, wait_for_file(tmp_path / "rootfs/tmp/pids").split())
        sleep = wait_for_row(container, "sleep 998")
        rows = {row.pid: row for row in processes(container.pid)}
        shell = next(pid for pid in rows if namespace_pid(pid) == shell_inside)
        assert namespace_pid(sleep.pid) == sleep_inside
        assert set(rows) == {container.pid, shell, sleep.pid}  # nothing of the host's
        init = rows[container.pid]
        assert (init.cmd, init.ppid, init.uid) == ("sleep 1000", container.launcher, "root")
        assert rows[shell].cmd == "sh -c sleep 998 & echo $$ $! > /tmp/pids; wait"
        assert rows[sleep.pid].ppid == shell
        joiner = rows[shell].ppid  # outside the container: the caller's own child
        assert joiner not in rows
        assert parent_of(joiner) == os.getpid()
        for row in rows.values():
            assert (row.tty, row.time) == ("?", "00:00:00")
            assert re.fullmatch(r"\d\d:\d\d|[A-Z][a-z]{2}\d\d", row.stime)  # today, or
            # yesterday when this runs across midnight
    finally:
        kill_all_but_init(container)
        started.join()
    assert started.code == 137


def test_includes_descendants_in_nested_pid_namespaces(container: Container) -> None:
    ours = Path("/proc/self/status").read_text().split("CapEff:")[1].split()[0]  # SYS_ADMIN
    started = Exec(container, "exec unshare -p -f sleep 997", capabilities=int(ours, 16))
    started.start()
    try:
        nested = wait_for_row(container, "sleep 997")
        assert namespace_pid(nested.pid) == 1  # the init of a namespace of its own ...
        assert Path(f"/proc/{nested.pid}/ns/pid").stat() \
            != Path(f"/proc/{container.pid}/ns/pid").stat()
        unshare = next(row for row in processes(container.pid) if row.pid == nested.ppid)
        assert unshare.cmd == "unshare -p -f sleep 997"  # ... below the container's
    finally:
        kill_all_but_init(container)
        started.join()


def test_a_user_is_named_from_the_hosts_passwd(container: Container) -> None:
    started = Exec(container, "exec sleep 996", uid=4242, gid=4242)  # unknown to the host
    started.start()
    try:
        assert wait_for_row(container, "sleep 996").uid == "4242"
    finally:
        kill_all_but_init(container)
        started.join()


def test_a_dead_container_is_refused(tmp_path: Path) -> None:
    with running(make_rootfs(tmp_path / "rootfs")) as gone:
        assert processes(gone.pid)
    with pytest.raises(ContainerNotRunning):
        processes(gone.pid)
    with pytest.raises(ContainerNotRunning, match="not the init"):
        processes(1)


def test_the_table_is_aligned_as_docker_top_prints_it() -> None:
    rows = [ProcessRow("root", 4242, 4200, 0, "10:01", "?", "00:00:00", "sleep 1000"),
            ProcessRow("systemd+", 4243, 4242, 99, "Jan02", "pts/0", "1-02:03:04",
                       "sh -c a very long command line that is not padded")]
    assert format_table(rows).splitlines() == [
        "UID                 PID                 PPID                C                   "
        "STIME               TTY                 TIME                CMD",
        "root                4242                4200                0                   "
        "10:01               ?                   00:00:00            sleep 1000",
        "systemd+            4243                4242                99                  "
        "Jan02               pts/0               1-02:03:04          "
        "sh -c a very long command line that is not padded",
    ]
    assert format_table([]) == "   ".join(t.ljust(17) for t in TITLES[:-1]) + "   CMD\n"
    wide = ProcessRow("a-user-name-past-20-cells", 1, 0, 0, "10:01", "?", "00:00:00", "x")
    assert format_table([wide]).splitlines()[1].startswith("a-user-name-past-20-cells   1 ")
