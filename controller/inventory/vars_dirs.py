"""``group_vars/`` and ``host_vars/`` beside the inventory.

For a group or host NAME, the first of ``NAME``, ``NAME.yml``, ``NAME.yaml`` and
``NAME.json`` that exists is used, and only that one (Ansible stops at the first).
If it is a directory, every file below it with one of those extensions or none is
read, in sorted order per directory level, sub-directories (without an extension)
where they sort; hidden files and ``*~`` backups are skipped. Later files override
earlier ones key by key (no deep merge, Ansible's default ``hash_behaviour``).
Empty files are ignored; a file that holds anything but a mapping is an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from controller.inventory.datafiles import load_data, read_bytes
from controller.inventory.errors import InventoryError

EXTENSIONS = (".yml", ".yaml", ".json")


def _tree_files(directory: Path) -> list[Path]:
    found: list[Path] = []
    try:
        names = sorted(entry.name for entry in directory.iterdir())
    except OSError as exc:
        raise InventoryError(f"cannot list: {exc.strerror or exc}", str(directory)) from None
    for name in names:
        if name.startswith(".") or name.endswith("~"):
            continue
        path = directory / name
        extension = path.suffix
        if path.is_dir() and not extension:
            found.extend(_tree_files(path))
        elif path.is_file() and (not extension or extension in EXTENSIONS):
            found.append(path)
    return found


def vars_files(directory: Path, name: str) -> list[Path]:
    """The files that hold NAME's variables in ``directory`` (``group_vars/`` or ``host_vars/``)."""
    # Ansible skips names that are absolute paths; '..' would climb out of the directory.
    if name.startswith("/") or ".." in name.split("/"):
        return []
    for candidate in (name, *(name + extension for extension in EXTENSIONS)):
        path = directory / candidate
        if path.is_dir():
            return _tree_files(path)
        if path.exists():
            return [path]
    return []


class VarsDirs:
    """The variable files beside one inventory source, each file read once."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._files: dict[Path, dict[str, Any]] = {}

    def _load(self, path: Path) -> dict[str, Any]:
        if path not in self._files:
            value = load_data(read_bytes(path), str(path))
            if value and not isinstance(value, dict):
                raise InventoryError(f"expected a mapping of variables, found "
                                     f"{type(value).__name__}", str(path))
            self._files[path] = value or {}
        return self._files[path]

    def variables(self, kind: str, names: Iterable[str]) -> dict[str, Any]:
        """``kind`` is ``group_vars`` or ``host_vars``; later names override earlier ones."""
        directory = self.base / kind
        merged: dict[str, Any] = {}
        if not directory.is_dir():
            return merged
        for name in names:
            for path in vars_files(directory, name):
                merged.update(self._load(path))
        return merged
