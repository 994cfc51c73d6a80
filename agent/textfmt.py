"""How the host CLIs print what people read: docker's tables, ages and sizes."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import TextIO


def now_rfc3339() -> str:
    """Now, as docker writes times (RFC 3339, UTC, nanoseconds): logs, states, reports."""
    seconds = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + \
        f".{int(seconds % 1 * 1e9):09d}Z"


def parse_time(stamp: str | None) -> dt.datetime | None:
    if not stamp:
        return None
    text = stamp.replace("Z", "+00:00")
    if "." in text:  # RFC 3339 with nanoseconds: Python takes microseconds
        head, _, rest = text.partition(".")
        digits = rest[:len(rest) - len(rest.lstrip("0123456789"))]
        text = f"{head}.{digits[:6]}{rest[len(digits):]}"
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def duration(seconds: float) -> str:
    """docker's ``units.HumanDuration``: "Less than a second", "5 seconds", "About a
    minute", "3 hours"..."""
    whole = int(seconds)
    minutes, hours = whole // 60, whole // 3600
    days = hours // 24
    steps = ((seconds < 1, "Less than a second"),
             (whole < 60, f"{whole} second{'s' if whole > 1 else ''}"),
             (minutes == 1, "About a minute"), (minutes < 60, f"{minutes} minutes"),
             (hours == 1, "About an hour"), (hours < 48, f"{hours} hours"),
             (days < 14, f"{days} days"), (days < 60, f"{days // 7} weeks"),
             (days < 730, f"{days // 30} months"))
    return next((text for applies, text in steps if applies), f"{days // 365} years")


def since(stamp: str | None) -> float | None:
    when = parse_time(stamp)
    return None if when is None else (dt.datetime.now(dt.UTC) - when).total_seconds()


def ago(stamp: str | None) -> str:
    seconds = since(stamp)
    return "N/A" if seconds is None else f"{duration(max(seconds, 0))} ago"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.3g}{unit}"
        value /= 1000
    return f"{value:.3g}GB"  # pragma: no cover


def print_table(rows: Sequence[Sequence[str]], out: TextIO, gap: str = "   ") -> None:
    """Left-aligned columns, the last one unpadded, as docker prints them."""
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        print(gap.join([*cells, row[-1]]), file=out)
