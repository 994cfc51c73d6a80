"""Is that process still the one we started? Read from /proc, so a recycled pid is not
taken for a live monitor: a process is named by its pid *and* its start time."""

from __future__ import annotations

from pathlib import Path


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22);
    ``None`` when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def alive(pid: int | None, started: int | None = None) -> bool:
    """Running (a zombie its reaper has yet to collect is not), and, with ``started``,
    still the process that started then."""
    if not pid:
        return False
    now = start_time(pid)
    return now is not None and (started is None or now == started)
