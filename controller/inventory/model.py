"""The resolved inventory: what every host is, with its final variables.

Nothing here changes after ``load_inventory`` returns; the parsers' mutable state
stays in ``builder``. Orders are meaningful and follow Ansible: ``Inventory.hosts``
and ``Inventory.groups`` in the order the sources first mention them (``all`` and
``ungrouped`` first), a group's ``hosts`` and ``children`` in declaration order,
and ``Host.groups`` in variable precedence order (``all`` first, then by depth,
``ansible_group_priority`` and name), so the last group is the one whose variables win.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCALHOST_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Host:
    name: str
    vars: Mapping[str, Any]  # final: every inventory source of variables merged
    groups: tuple[str, ...]  # all groups it belongs to, ancestors included, by precedence
    # Ansible's implicit localhost: not declared in the inventory, reached locally.
    implicit: bool = False


@dataclass(frozen=True)
class Group:
    name: str
    hosts: tuple[str, ...]  # direct members only
    children: tuple[str, ...]
    parents: tuple[str, ...]
    # The group's own variables: the inventory file's, overridden by group_vars/ files.
    vars: Mapping[str, Any]
    depth: int  # the longest path from ``all``
    priority: int = 1  # ansible_group_priority (set in the inventory file only)


@dataclass(frozen=True)
class Inventory:
    hosts: dict[str, Host]
    groups: dict[str, Group]
    source: Path | None = None
    warnings: tuple[str, ...] = ()  # what Ansible would warn about (skipped YAML entries, ...)
    # What the localhost names not declared stand for: the declared localhost, if one
    # is, else the implicit localhost.
    implicit_hosts: dict[str, Host] = field(default_factory=dict)

    def host(self, name: str) -> Host:
        """A declared host, or the implicit localhost; ``KeyError`` for anything else."""
        if name in self.hosts:
            return self.hosts[name]
        return self.implicit_hosts[name]

    def descendants(self, group: str) -> list[str]:
        """The group and every group below it, breadth first, each once.

        Ansible walks each level of this tree as a set, so where one level holds
        several groups with children its order is arbitrary; this one is declaration order.
        """
        order = {group: None}
        level = [group]
        while level:
            following: list[str] = []
            for name in level:
                for child in self.groups[name].children:
                    if child not in order:
                        order[child] = None
                        following.append(child)
            level = following
        return list(order)

    def group_hosts(self, group: str) -> list[str]:
        """Every host in the group or below it, in Ansible's order (the group's own first)."""
        found: dict[str, None] = {}
        for name in self.descendants(group):
            found.update(dict.fromkeys(self.groups[name].hosts))
        return list(found)
