"""``load_inventory``: an inventory file or directory -> ``Inventory``.

A directory is every inventory file inside it, recursively, in sorted order, as
Ansible reads one: hidden names, ``group_vars``, ``host_vars``, ``vars_plugins``
and files Ansible ignores by extension (backups, ``.md``, ``.txt``, ``.cfg``, ...)
are skipped. ``group_vars/`` and ``host_vars/`` are those of the directory given,
or of the file's directory.

Each file's format is chosen as Ansible's plugin order does: ``.yml``, ``.yaml`` and
``.json`` are YAML; a file without an extension is YAML if it holds a mapping, else
INI; anything else is INI. Where Ansible warns that a source could not be parsed
and carries on without it, this is an error: a half-read fleet is worse than none.
Dynamic inventories (scripts, inventory plugins) are not run, and not supported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from controller.inventory.builder import ALL, UNGROUPED, InventoryBuilder
from controller.inventory.datafiles import load_data, read_bytes, refuse_vault
from controller.inventory.errors import InventoryError
from controller.inventory.ini import read_ini
from controller.inventory.model import Group, Host, Inventory
from controller.inventory.resolve import resolve
from controller.inventory.yaml_format import read_yaml

YAML_SUFFIXES = (".yml", ".yaml", ".json")
_IGNORED_EXTENSIONS = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst",
                       ".orig", ".cfg", ".retry")
_IGNORED = re.compile(r"^\.|^host_vars$|^group_vars$|^vars_plugins$|"
                      + "|".join(re.escape(e) + "$" for e in _IGNORED_EXTENSIONS))


def source_files(path: Path) -> list[Path]:
    """The inventory files a path stands for."""
    if not path.is_dir():
        return [path]
    try:
        names = sorted((entry.name for entry in path.iterdir()), key=os.fsencode)
    except OSError as exc:
        raise InventoryError(f"cannot list: {exc.strerror or exc}", str(path)) from None
    files: list[Path] = []
    for name in names:
        if not _IGNORED.search(name):
            files.extend(source_files(path / name))
    return files


def _read_source(builder: InventoryBuilder, path: Path) -> None:
    file = str(path)
    suffix = path.suffix
    if suffix == ".toml":
        raise InventoryError("TOML inventories are not supported (use INI or YAML)", file)
    data = read_bytes(path)
    refuse_vault(data, file)  # before the INI fallback could read it as host names
    if suffix and suffix not in YAML_SUFFIXES:
        read_ini(builder, data, file)
        return
    try:
        value = load_data(data, file)
    except InventoryError:
        if suffix:
            raise
        value = None  # no extension and not YAML: INI
    if isinstance(value, Mapping) and value:
        if "plugin" in value:
            raise InventoryError(f"inventory plugin configuration (plugin: {value['plugin']}) "
                                 "is not supported: only static INI and YAML inventories", file)
        read_yaml(builder, value, file)
    elif suffix:
        if value:  # an empty YAML file is an empty inventory
            raise InventoryError("a YAML inventory must be a mapping of groups, found "
                                 f"{type(value).__name__}", file)
    else:
        read_ini(builder, data, file)


def localhost_inventory() -> Inventory:
    """No inventory at all: this machine, reached locally, and matched by ``all``."""
    host = Host(name="localhost", vars={"ansible_connection": "local"},
                groups=(ALL, UNGROUPED), implicit=True)
    groups = {ALL: Group(ALL, hosts=(), children=(UNGROUPED,), parents=(), vars={}, depth=0),
              UNGROUPED: Group(UNGROUPED, hosts=(host.name,), children=(), parents=(ALL,),
                               vars={}, depth=1)}
    return Inventory(hosts={host.name: host}, groups=groups)


def load_inventory(path: Path | None) -> Inventory:
    """Read an inventory file or directory; ``None``: only the implicit localhost."""
    if path is None:
        return localhost_inventory()
    if not path.exists():
        raise InventoryError("no such inventory file or directory", str(path))
    builder = InventoryBuilder()
    for file in source_files(path):
        try:
            _read_source(builder, file)
        except InventoryError as exc:
            if exc.file is None:
                raise InventoryError(exc.reason, str(file)) from None
            raise
    builder.reconcile()
    base = path if path.is_dir() else path.parent
    return resolve(builder, base.resolve(), path)
