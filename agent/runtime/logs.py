"""Reading a container's json-file log back (``pyprov logs [-f] [--tail N] [-t]``).

The monitor writes ``<id>-json.log`` and rotates it to ``.1``, ``.2`` ...; a read goes
oldest file first. ``follow`` keeps reading the live file, reopening it when the monitor
rotates it (a new inode at the same name), until ``done()`` says the container is down
and nothing more arrives.
"""

from __future__ import annotations

import json
import os
import select
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

POLL = 0.05


@dataclass(frozen=True)
class LogLine:
    stream: str   # stdout | stderr
    text: str
    time: str


def _parse(raw: bytes) -> LogLine | None:
    try:
        record = json.loads(raw)
        return LogLine(str(record.get("stream", "stdout")), str(record["log"]),
                       str(record.get("time", "")))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # a torn last line (the monitor was killed mid-write)


def _files(log: Path) -> list[Path]:
    rotated = []
    index = 1
    while (candidate := log.with_name(f"{log.name}.{index}")).exists():
        rotated.append(candidate)
        index += 1
    return [*reversed(rotated), log]


def read(log: Path, tail: int | None = None) -> list[LogLine]:
    lines: deque[LogLine] = deque(maxlen=tail if tail is not None and tail >= 0 else None)
    for path in _files(log):
        try:
            with path.open("rb") as handle:
                for raw in handle:
                    if (line := _parse(raw)) is not None:
                        lines.append(line)
        except FileNotFoundError:
            continue
    return list(lines)


def follow(log: Path, done: Callable[[], bool], tail: int | None = None,
           wake_fd: int | None = None) -> Iterator[LogLine]:
    """The last ``tail`` lines, then every new one until ``done()`` and the file is
    drained. ``wake_fd`` (the monitor's pidfd): readable when it exits, which ends a
    wait at once instead of at the next poll. The live file is opened first and read
    through one handle, so no line written meanwhile falls between history and follow."""
    try:
        handle = log.open("rb")
    except FileNotFoundError:  # never started: nothing to follow
        yield from read(log, tail)
        return
    try:
        history: deque[LogLine] = deque(maxlen=tail if tail is not None and tail >= 0
                                        else None)
        for path in _files(log)[:-1]:
            history.extend(read(path))
        pending = b""
        finished = False
        first = True
        while True:
            chunk = handle.read()
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                lines = [line for raw in complete if (line := _parse(raw)) is not None]
                if first:
                    history.extend(lines)
                    lines, first = list(history), False
                yield from lines
                continue
            if first:
                yield from history
                first = False
            if _rotated(log, handle):
                handle.close()
                handle = log.open("rb")
                continue
            if finished:
                return
            finished = done()  # one more read after it is down: drain what is left
            if not finished:
                if wake_fd is None:
                    time.sleep(POLL)
                else:
                    select.select([wake_fd], [], [], POLL)
    finally:
        handle.close()


def _rotated(log: Path, handle: object) -> bool:
    try:
        return log.stat().st_ino != os.fstat(handle.fileno()).st_ino  # type: ignore[attr-defined]
    except FileNotFoundError:
        return False
