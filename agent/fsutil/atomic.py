"""The one atomic-write helper: temp file in the same directory, fsync, rename, fsync dir.

A reader (or dockerd) sees the old file or the new one, never a torn write, even
when the writer is SIGKILLed. Temp files are named after their writer (pid and pid
namespace), so a later write removes those whose writer is dead; a temp from
another pid namespace (whose pids mean nothing here) is removed only when old.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

_TEMP_MARK = ".pyprov-tmp."
_FOREIGN_TEMP_AGE = 3600.0


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _temp_name(name: str, pid: int | None = None) -> str:
    writer = f"{_pid_namespace()}-{os.getpid() if pid is None else pid}"
    return f".{name}{_TEMP_MARK}{writer}.{os.urandom(4).hex()}"


def temp_path(target: Path, pid: int | None = None) -> Path:
    """Where a writer with ``pid`` (default: this process) stages ``target``."""
    return target.with_name(_temp_name(target.name, pid))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _abandoned(entry: str, writer: str) -> bool:
    namespace, _, pid = writer.partition("-")
    if namespace == str(_pid_namespace()) and pid.isdigit():
        return int(pid) != os.getpid() and not _pid_alive(int(pid))
    try:
        return time.time() - os.stat(entry).st_mtime > _FOREIGN_TEMP_AGE
    except FileNotFoundError:
        return False


def _remove_stale(parent: str, name: str) -> list[str]:
    removed = []
    prefix = f".{name}{_TEMP_MARK}"
    with contextlib.suppress(FileNotFoundError), os.scandir(parent) as entries:
        for entry in entries:
            if not entry.name.startswith(prefix):
                continue
            if _abandoned(entry.path, entry.name[len(prefix) :].split(".", 1)[0]):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(entry.path)
    return removed


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove temp files of ``target`` left by writers that died before their rename."""
    return [Path(path) for path in _remove_stale(str(target.parent), target.name)]


def fsync_dir(directory: Path | str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(directory: Path | str, mode: int) -> None:
    """``mkdir -p`` that fsyncs each parent it adds to, so new dirs survive a crash."""
    path = os.fspath(directory)
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for new in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(new, mode)
        fsync_dir(os.path.dirname(new) or "/")


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


def atomic_write(target: Path | str, data: bytes, mode: int = 0o644,
                 dir_mode: int = 0o755) -> None:
    """Replace ``target`` with ``data`` atomically and durably, creating parent dirs.

    Plain ``os`` calls on strings: the container monitors write their state through
    this, and every Python object a forked monitor touches costs it a private page."""
    path = os.fspath(target)
    parent, name = os.path.split(path)
    parent = parent or "."
    make_dirs(parent, dir_mode)
    _remove_stale(parent, name)
    temp = os.path.join(parent, _temp_name(name))
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
            os.unlink(temp)
        raise
    os.close(fd)
    try:
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_dir(parent)
