"""``docker top``: a container's processes, in the columns of ``ps -ef``, read from /proc.

A container's processes are those in its init's pid namespace (``/proc/X/ns/pid``) and
their descendants (a nested container's, in a namespace of its own). Everything is shown
as the host sees it, as docker does: host pids, and users named from the host's
/etc/passwd. Columns follow procps (``ps -ef``): C is the lifetime CPU share capped at
99, STIME the start as HH:MM today, MonDD this year, else the year, TIME the CPU time
as [DD-]HH:MM:SS, CMD the command line, or ``[comm]`` when it has none.
"""

from __future__ import annotations

import io
import os
import pwd
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agent.runtime.exec import ContainerNotRunning, require_container_init
from agent.textfmt import print_table

TITLES = ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD")
MIN_WIDTH = 20
"""docker top's tabwriter: every column but the last at least 20 cells, 3 of padding."""
_GAP = "   "


@dataclass(frozen=True)
class ProcessRow:
    uid: str
    pid: int
    ppid: int
    c: int
    stime: str
    tty: str
    time: str
    cmd: str

    def cells(self) -> tuple[str, ...]:
        return (self.uid, str(self.pid), str(self.ppid), str(self.c), self.stime, self.tty,
                self.time, self.cmd)


@dataclass(frozen=True)
class _Stat:
    comm: str
    state: str
    ppid: int
    tty_nr: int
    cpu_ticks: int   # utime + stime
    started: int     # clock ticks after boot


def processes(pid: int) -> list[ProcessRow]:
    """The processes of the container whose init is ``pid``, by pid; raises
    :class:`~agent.runtime.exec.ContainerNotRunning`."""
    require_container_init(pid)
    namespace = _pid_namespace(pid)
    if namespace is None:
        raise ContainerNotRunning(pid, "it has exited")
    stats: dict[int, _Stat] = {}
    members: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
            if _pid_namespace(int(entry.name)) == namespace:
                members.add(int(entry.name))
    members |= _descendants(members, stats)
    clock = _Clock()
    return [row for member in sorted(members)
            if (row := _row(member, stats[member], clock)) is not None]


def format_table(rows: Iterable[ProcessRow]) -> str:
    """The table as ``docker top`` prints it, titles first, every line ending in \\n."""
    titles = [title.ljust(MIN_WIDTH - len(_GAP)) for title in TITLES[:-1]]
    out = io.StringIO()
    print_table([[*titles, TITLES[-1]], *(row.cells() for row in rows)], out, gap=_GAP)
    return out.getvalue()


def _pid_namespace(pid: int) -> tuple[int, int] | None:
    try:
        found = Path(f"/proc/{pid}/ns/pid").stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _stat(pid: int) -> _Stat | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_bytes().decode("utf-8", "replace")
    except OSError:
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    return _Stat(comm, fields[0], int(fields[1]), int(fields[4]),
                 int(fields[11]) + int(fields[12]), int(fields[19]))


def _descendants(roots: set[int], stats: dict[int, _Stat]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, stat in stats.items():
        children.setdefault(stat.ppid, []).append(pid)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and child not in roots:
                found.add(child)
                todo.append(child)
    return found


class _Clock:
    """The host's clock tick, boot time and now, read once per listing."""

    def __init__(self) -> None:
        self.hertz = os.sysconf("SC_CLK_TCK")
        self.now = time.time()
        stat = Path("/proc/stat").read_text()
        self.boot = next(int(line.split()[1]) for line in stat.splitlines()
                         if line.startswith("btime "))

    def started(self, ticks: int) -> float:
        return self.boot + ticks / self.hertz


def _row(pid: int, stat: _Stat, clock: _Clock) -> ProcessRow | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone since the scan
        return None
    euid = next(int(line.split()[2]) for line in status.splitlines()
                if line.startswith("Uid:"))
    cmd = " ".join(arg.decode("utf-8", "replace") for arg in argv.rstrip(b"\0").split(b"\0"))
    if not cmd:
        cmd = f"[{stat.comm}]"
    if stat.state == "Z":
        cmd = f"[{stat.comm}] <defunct>"
    started = clock.started(stat.started)
    seconds = int(max(clock.now - started, 0))  # procps: whole seconds, lifetime share
    cpu = stat.cpu_ticks / clock.hertz
    return ProcessRow(uid=_user(euid), pid=pid, ppid=stat.ppid,
                      c=min(int(cpu * 100) // seconds if seconds else 0, 99),
                      stime=_stime(started, clock.now), tty=_tty(stat.tty_nr),
                      time=_cpu_time(int(cpu)), cmd=cmd)


def _user(uid: int) -> str:
    """procps: the name, cut to 7 characters and ``+`` beyond 8; the number when unknown."""
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
    return name if len(name) <= 8 else f"{name[:7]}+"


def _stime(started: float, now: float) -> str:
    then, today = time.localtime(started), time.localtime(now)
    if then.tm_year != today.tm_year:
        return time.strftime("%Y", then)
    return time.strftime("%H:%M" if then.tm_yday == today.tm_yday else "%b%d", then)


def _cpu_time(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def _tty(tty_nr: int) -> str:
    """The terminal's name as procps abbreviates it (pts/N, ttyN, ttySN), ``?`` if none."""
    major, minor = os.major(tty_nr), os.minor(tty_nr)
    if not tty_nr:
        return "?"
    if 136 <= major <= 143:
        return f"pts/{(major - 136) * 256 + minor}"
    if major == 4:
        return f"tty{minor}" if minor < 64 else f"ttyS{minor - 64}"
    return {(5, 0): "tty", (5, 1): "console"}.get((major, minor), "?")
