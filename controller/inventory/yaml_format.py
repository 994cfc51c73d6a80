"""Ansible's YAML inventory format.

    all:
      hosts:
        solo.example.com:
      children:
        web:
          hosts:
            web[01:03].example.com:2222:
              tier: 1
          vars:
            http_port: 8080

Top-level keys are groups; each has optional ``hosts`` (name or pattern -> its
variables), ``children`` (group name -> the same structure, recursively) and
``vars``. A section may be a single name instead of a mapping (``hosts: db1``).
Values keep their YAML types. As in Ansible, an entry that is not a mapping and a
key other than the three are skipped with a warning, not an error; wrong types
where a mapping is required are errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.inventory.builder import InventoryBuilder
from controller.inventory.errors import InventoryError
from controller.inventory.ranges import expand_host_pattern

SECTIONS = ("vars", "children", "hosts")


class _YamlReader:
    def __init__(self, builder: InventoryBuilder, file: str) -> None:
        self.builder, self.file = builder, file

    def warn(self, message: str) -> None:
        self.builder.warnings.append(f"{self.file}: {message}")

    def group(self, name: Any, data: Any) -> str | None:
        """Read one group; its name, or ``None`` when it was skipped."""
        if not isinstance(name, str) or not name:
            raise InventoryError(f"group name {name!r} is not a non-empty string", self.file)
        if data is not None and not isinstance(data, Mapping):
            self.warn(f"skipping {name!r}: not a valid group definition")
            return None
        self.builder.add_group(name)
        sections = dict(data or {})
        for section in SECTIONS:
            if isinstance(sections.get(section), str):
                sections[section] = {sections[section]: None}
            if not isinstance(sections.get(section), (Mapping, type(None))):
                raise InventoryError(f"group {name!r}: {section!r} must be a mapping, found "
                                     f"{type(sections[section]).__name__}", self.file)
        for key, value in sections.items():
            if value is not None and not isinstance(value, Mapping):
                self.warn(f"group {name!r}: skipping key {key!r}: not a mapping")
            elif value is not None:
                self.section(name, key, value)
        return name

    def section(self, group: str, key: Any, value: Mapping[Any, Any]) -> None:
        if key == "vars":
            for var, var_value in value.items():
                self.builder.set_group_var(group, var, var_value)
        elif key == "children":
            for child, child_data in value.items():
                self.child(group, child, child_data)
        elif key == "hosts":
            for pattern, variables in value.items():
                self.hosts(group, pattern, variables)
        else:
            self.warn(f"group {group!r}: skipping unexpected key {key!r} "
                      "(only vars, children and hosts are valid)")

    def child(self, parent: str, name: Any, data: Any) -> None:
        child = self.group(name, data)
        if child is None:
            # Ansible still links a skipped child by name: it must then exist.
            if name not in self.builder.groups:
                raise InventoryError(f"group {parent!r}: child {name!r} is not a group",
                                     self.file)
            child = name
        self.builder.add_child(parent, child)

    def hosts(self, group: str, pattern: Any, variables: Any) -> None:
        if not isinstance(pattern, str):
            raise InventoryError(f"group {group!r}: host {pattern!r} must be a string "
                                 "(quote numbers)", self.file)
        if not variables:  # Ansible reads any empty value ('', [], 0) as no variables
            variables = {}
        if not isinstance(variables, Mapping):
            raise InventoryError(f"host {pattern!r}: variables must be a mapping, found "
                                 f"{type(variables).__name__}", self.file)
        names, port = expand_host_pattern(pattern)
        for host in names:
            self.builder.add_host(host, group, port)
            for key, value in variables.items():
                self.builder.set_host_var(host, key, value)


def read_yaml(builder: InventoryBuilder, data: Mapping[Any, Any], file: str) -> None:
    """Add one YAML inventory document (already loaded, a mapping) to ``builder``."""
    reader = _YamlReader(builder, file)
    try:
        for name, group_data in data.items():
            reader.group(name, group_data)
    except InventoryError as exc:
        if exc.file is not None:
            raise
        raise InventoryError(exc.reason, file) from None
