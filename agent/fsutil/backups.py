"""Timestamped backups of files before pyprov replaces them, a bounded number per file."""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path

from agent.fsutil.atomic import atomic_write

DEFAULT_KEEP = 10


def backup_dir_for(backups_root: Path, original: Path) -> Path:
    """One directory per managed file, named by its escaped absolute path."""
    return backups_root / urllib.parse.quote(str(original), safe="")


def save_backup(backups_root: Path, original: Path, content: bytes,
                keep: int = DEFAULT_KEEP) -> Path:
    """Store ``content`` as the newest backup of ``original``; prune beyond ``keep``.

    The same content as the newest backup is not stored again, so a pass retried after
    a crash does not push real history out.
    """
    directory = backup_dir_for(backups_root, original)
    existing = list_backups(backups_root, original)
    if existing and existing[-1].read_bytes() == content:
        return existing[-1]
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"
    path = directory / f"{stamp}{original.suffix or '.bak'}"
    atomic_write(path, content, mode=0o600, dir_mode=0o700)
    backups = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    for old in backups[:-keep] if keep > 0 else backups:
        old.unlink()
    return path


def list_backups(backups_root: Path, original: Path) -> list[Path]:
    directory = backup_dir_for(backups_root, original)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if not p.name.startswith("."))
