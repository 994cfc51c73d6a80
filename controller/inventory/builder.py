"""The inventory while sources are read: groups, hosts, memberships and file variables.

Both file formats feed one builder, so they share Ansible's rules: a host is created
once (its ``host:port`` port is taken from its first mention only), a group is
never its own ancestor, ``ansible_group_priority`` is a setting of the group and
not a variable, and after all sources ``reconcile`` puts parentless groups under
``all`` and hosts without a group into ``ungrouped``. Variables here are the
inventory files' own; ``group_vars/`` and ``host_vars/`` come later (``resolve``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controller.inventory.errors import InventoryError

ALL, UNGROUPED = "all", "ungrouped"
PRIORITY_VAR = "ansible_group_priority"


@dataclass
class GroupData:
    name: str
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    priority: int = 1


@dataclass
class HostData:
    name: str
    groups: list[str] = field(default_factory=list)  # direct memberships
    vars: dict[str, Any] = field(default_factory=dict)


class InventoryBuilder:
    def __init__(self) -> None:
        self.groups: dict[str, GroupData] = {ALL: GroupData(ALL), UNGROUPED: GroupData(UNGROUPED)}
        self.hosts: dict[str, HostData] = {}
        self.warnings: list[str] = []
        # Groups a host lost when reconcile took it out of `ungrouped` (see there).
        self.detached: dict[str, set[str]] = {}
        self.add_child(ALL, UNGROUPED)

    def add_group(self, name: str) -> None:
        if not name:
            raise InventoryError("empty group name")
        self.groups.setdefault(name, GroupData(name))

    def add_host(self, name: str, group: str, port: int | None = None) -> None:
        if not name:
            raise InventoryError("empty host name")
        if name not in self.hosts:
            self.hosts[name] = HostData(name)
            if port:  # as Ansible: port 0 is no port
                self.hosts[name].vars["ansible_port"] = port
        self._join(name, group)

    def _join(self, host: str, group: str) -> None:
        if host not in self.groups[group].hosts:
            self.groups[group].hosts.append(host)
            self.hosts[host].groups.append(group)

    def ancestors(self, group: str) -> set[str]:
        seen: set[str] = set()
        todo = list(self.groups[group].parents)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(self.groups[name].parents)
        return seen

    def add_child(self, parent: str, child: str) -> None:
        if parent == child or child in self.ancestors(parent):
            raise InventoryError(f"adding group {child!r} as a child of {parent!r} "
                                 "creates a dependency loop")
        if child not in self.groups[parent].children:
            self.groups[parent].children.append(child)
        if parent not in self.groups[child].parents:
            self.groups[child].parents.append(parent)

    def set_group_var(self, group: str, key: str, value: Any) -> None:
        if key == PRIORITY_VAR:
            try:
                self.groups[group].priority = int(value)
            except (TypeError, ValueError):
                raise InventoryError(f"group {group!r}: {PRIORITY_VAR} must be an integer, "
                                     f"got {value!r}") from None
        else:
            self.groups[group].vars[key] = value

    def set_host_var(self, host: str, key: str, value: Any) -> None:
        self.hosts[host].vars[key] = value

    def host_groups(self, host: str) -> set[str]:
        """Every group of a host: its direct groups and their ancestors."""
        found: set[str] = set()
        for group in self.hosts[host].groups:
            found |= {group, *self.ancestors(group)}
        return found - self.detached.get(host, set())

    def reconcile(self) -> None:
        """Ansible's rules once every source is read: ``all`` and ``ungrouped``."""
        for name, group in self.groups.items():
            if name != ALL and not group.parents:
                self.add_child(ALL, name)
        for name in self.hosts:
            groups = self.host_groups(name)
            if UNGROUPED in groups and groups - {ALL, UNGROUPED}:
                if UNGROUPED in self.hosts[name].groups:  # not when only below it
                    self._leave_ungrouped(name)
            elif not groups - {ALL}:
                self._join(name, UNGROUPED)
        for name in sorted(self.groups.keys() & self.hosts.keys()):
            self.warnings.append(f"found both a group and a host named {name!r}")

    def _leave_ungrouped(self, host: str) -> None:
        """Ansible drops ``ungrouped`` (and its ancestors no other group of the host
        has) from the host's groups, even where the host is also in a child of
        ``ungrouped``: the host then does not get ``ungrouped``'s variables."""
        self.groups[UNGROUPED].hosts.remove(host)
        self.hosts[host].groups.remove(UNGROUPED)
        remaining = self.host_groups(host) - {UNGROUPED}
        detached = {UNGROUPED}
        for ancestor in self.ancestors(UNGROUPED) - {ALL}:
            if not any(ancestor in self.ancestors(group) for group in remaining - {ancestor}):
                detached.add(ancestor)
        self.detached[host] = detached
