"""Per-blob progress, as docker draws it: one line per layer, redrawn in place on a
terminal (at most 10 times a second); one line per finished step otherwise (logs, CI)."""

from __future__ import annotations

import threading
import time
from typing import TextIO

BAR = 30
REDRAW = 0.1


def _size(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.1f}{unit}" if unit != "B" else f"{int(count)}B"
        count /= 1000
    return f"{count:.1f}GB"  # pragma: no cover


class ProgressView:
    def __init__(self, out: TextIO, quiet: bool = False) -> None:
        self.out, self.quiet = out, quiet
        self.tty = out.isatty() and not quiet
        self._lines: dict[str, str] = {}
        self._drawn = 0
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, what: str, digest: str, done: int, total: int) -> None:
        short = digest.removeprefix("sha256:")[:12]
        if what == "downloading":
            filled = int(BAR * done / total) if total else BAR
            line = (f"{short}: Downloading [{'=' * max(0, filled - 1)}>"
                    f"{' ' * (BAR - filled)}] {_size(done)}/{_size(total)}")
        else:
            line = f"{short}: " + {"exists": "Already exists", "downloaded": "Download complete",
                                   "unpacked": "Pull complete", "uploaded": "Pushed",
                                   "mounted": "Mounted from another repository",
                                   }.get(what, what.capitalize())
        with self._lock:
            previous = self._lines.get(short)
            self._lines[short] = line
            if self.quiet:
                return
            if not self.tty:
                if what != "downloading" and line != previous:
                    print(line, file=self.out, flush=True)
                return
            now = time.monotonic()
            if what == "downloading" and now - self._last < REDRAW:
                return
            self._last = now
            self._redraw()

    def _redraw(self) -> None:
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}A")
        for line in self._lines.values():
            self.out.write(f"\x1b[2K{line}\n")
        self._drawn = len(self._lines)
        self.out.flush()

    def say(self, line: str) -> None:
        """A status line (not in quiet mode, where only the result is printed)."""
        if not self.quiet:
            with self._lock:
                print(line, file=self.out, flush=True)
