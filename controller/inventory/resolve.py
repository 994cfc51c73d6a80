"""Builder -> ``Inventory``: group depths, and each host's variables in Ansible's precedence.

Lowest to highest (Ansible's "Understanding variable precedence", inventory part,
with the default ``VARIABLE_PRECEDENCE``):

1. the inventory file's ``all`` vars, then the file's vars of the host's other
   groups, parents before children: by depth, then ``ansible_group_priority``,
   then name;
2. ``group_vars/all``, then ``group_vars/GROUP`` of those groups in the same order
   (so any ``group_vars/`` file beats any group variable written in the inventory file);
3. the inventory file's host variables (inline ``key=value``, YAML ``hosts:`` values);
4. ``host_vars/HOST``.

Each step overrides whole keys: dictionaries are replaced, not merged.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from controller.inventory.builder import ALL, InventoryBuilder
from controller.inventory.model import LOCALHOST_NAMES, Group, Host, Inventory
from controller.inventory.vars_dirs import VarsDirs


def resolve(builder: InventoryBuilder, base: Path, source: Path) -> Inventory:
    """``base`` holds ``group_vars/`` and ``host_vars/`` (the inventory's directory)."""
    dirs = VarsDirs(base)

    @cache
    def depth(name: str) -> int:
        parents = builder.groups[name].parents
        return max((depth(parent) + 1 for parent in parents), default=0)

    def precedence(name: str) -> tuple[int, int, str]:
        return depth(name), builder.groups[name].priority, name

    groups = {name: Group(name=name, hosts=tuple(data.hosts), children=tuple(data.children),
                          parents=tuple(data.parents),
                          vars=data.vars | dirs.variables("group_vars", [name]),
                          depth=depth(name), priority=data.priority)
              for name, data in builder.groups.items()}
    hosts = {}
    for name, data in builder.hosts.items():
        ordered = sorted(builder.host_groups(name) - {ALL}, key=precedence)
        variables: dict[str, Any] = dict(builder.groups[ALL].vars)
        for group in ordered:
            variables.update(builder.groups[group].vars)
        variables.update(dirs.variables("group_vars", [ALL, *ordered]))
        variables.update(data.vars)
        variables.update(dirs.variables("host_vars", [name]))
        hosts[name] = Host(name=name, vars=variables, groups=(ALL, *ordered))
    return Inventory(hosts=hosts, groups=groups, source=source,
                     warnings=tuple(builder.warnings),
                     implicit_hosts=_implicit_localhost(builder, dirs, hosts))


def _implicit_localhost(builder: InventoryBuilder, dirs: VarsDirs,
                        hosts: dict[str, Host]) -> dict[str, Host]:
    """What ``localhost``, ``127.0.0.1`` and ``::1`` mean when the inventory lacks them.

    As Ansible: the first of them the inventory declares stands for all three;
    without one, an implicit host with the vars of ``all``, ``ansible_connection=local``
    and its ``host_vars/`` file. (Ansible also sets ``ansible_python_interpreter`` to
    its own interpreter; pyprov leaves the choice to the local transport.)
    """
    declared = next((name for name in hosts if name in LOCALHOST_NAMES), None)
    implicit = {}
    for name in LOCALHOST_NAMES:
        if name in hosts:
            continue
        if declared is not None:
            implicit[name] = hosts[declared]
            continue
        variables = dict(builder.groups[ALL].vars) | dirs.variables("group_vars", [ALL])
        variables["ansible_connection"] = "local"
        variables.update(dirs.variables("host_vars", [name]))
        implicit[name] = Host(name=name, vars=variables, groups=(), implicit=True)
    return implicit
