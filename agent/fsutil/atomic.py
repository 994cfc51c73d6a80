"""The one atomic-write helper: temp file in the same directory, fsync, rename, fsync dir.

A reader (or dockerd) sees the old file or the new one, never a torn write, even
when the writer is SIGKILLed. Temp files carry the writer's pid, so a later write
removes those whose writer is dead.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

_TEMP_MARK = ".pyprov-tmp."


def _temp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}{_TEMP_MARK}{os.getpid()}.{secrets.token_hex(4)}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove temp files of ``target`` left by writers that died before their rename."""
    removed = []
    prefix = f".{target.name}{_TEMP_MARK}"
    with contextlib.suppress(FileNotFoundError):
        for entry in target.parent.iterdir():
            if not entry.name.startswith(prefix):
                continue
            pid_text = entry.name[len(prefix) :].split(".", 1)[0]
            if pid_text.isdigit() and int(pid_text) != os.getpid() and _pid_alive(int(pid_text)):
                continue
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_if_changed(target: Path, data: bytes, mode: int = 0o644,
                     dir_mode: int = 0o755) -> bool:
    """``atomic_write`` unless the file already holds ``data``: an idempotent pass touches
    nothing. Returns whether it wrote."""
    try:
        if target.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    atomic_write(target, data, mode, dir_mode)
    return True


def atomic_write(target: Path, data: bytes, mode: int = 0o644, dir_mode: int = 0o755) -> None:
    """Replace ``target`` with ``data`` atomically and durably, creating parent dirs."""
    target.parent.mkdir(mode=dir_mode, parents=True, exist_ok=True)
    remove_stale_temps(target)
    temp = _temp_name(target)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not loosen or tighten what was asked
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    os.close(fd)
    try:
        temp.replace(target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    fsync_dir(target.parent)
