"""``to_ansible_list``: what ``ansible-inventory --list`` prints (``pyprov inventory --list``).

    {"_meta": {"hostvars": {HOST: {VAR: VALUE}}},
     "all": {"children": ["ungrouped", ...]},
     GROUP: {"hosts": [...], "children": [...]}}

Rules kept from Ansible: a group lists its direct hosts and children in declaration
order; an empty ``hosts`` or ``children`` is left out, and a group with neither is
left out entirely (its parent still names it); ``all`` never lists hosts; a host
without variables is absent from ``hostvars``; the names Ansible reserves for its
own magic variables (``inventory_hostname``, ``group_names``, ``inventory_dir``, ...)
are removed from ``hostvars``, as ``ansible-inventory`` removes them; the implicit
localhost is not listed.

One key is deliberately not produced: ansible-core 2.19 adds
``_meta.profile: "inventory_legacy"``, the name of its own serializer for tagged
values, which pyprov does not have.

Values are made JSON-ready the way Ansible's encoder does: dates and times in ISO
8601, non-string keys as JSON spells them (``1`` -> ``"1"``, ``true``, ``null``).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any

from controller.inventory.builder import ALL
from controller.inventory.model import Inventory

# ansible.constants.INTERNAL_STATIC_VARS (ansible-core 2.19)
INTERNAL_VARS = frozenset({
    "ansible_async_path", "ansible_collection_name", "ansible_config_file",
    "ansible_dependent_role_names", "ansible_diff_mode", "ansible_facts", "ansible_forks",
    "ansible_inventory_sources", "ansible_limit", "ansible_play_batch", "ansible_play_hosts",
    "ansible_play_hosts_all", "ansible_play_role_names", "ansible_playbook_python",
    "ansible_role_name", "ansible_role_names", "ansible_run_tags", "ansible_skip_tags",
    "ansible_verbosity", "ansible_version", "inventory_dir", "inventory_file",
    "inventory_hostname", "inventory_hostname_short", "groups", "group_names", "hostvars",
    "playbook_dir", "play_hosts", "role_name", "role_names", "role_path", "role_uuid",
})


def _key(key: Any) -> str:
    return key if isinstance(key, str) else (
        json.dumps(key) if key is None or isinstance(key, (bool, int, float)) else str(key))


def json_ready(value: Any) -> Any:
    """A variable's value as JSON carries it."""
    if isinstance(value, Mapping):
        return {_key(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_ready(item) for item in value]
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value


def to_ansible_list(inventory: Inventory) -> dict[str, Any]:
    listed = [name for name in inventory.group_hosts(ALL) if not inventory.hosts[name].implicit]
    available = set(listed)
    result: dict[str, Any] = {}

    def add(name: str) -> None:
        group = inventory.groups[name]
        entry: dict[str, list[str]] = {}
        hosts = [host for host in group.hosts if host in available] if name != ALL else []
        if hosts:
            entry["hosts"] = hosts
        if group.children:
            entry["children"] = list(group.children)
        if entry:
            result[name] = entry
        for child in group.children:
            if child not in seen:
                seen.add(child)
                add(child)

    seen: set[str] = set()
    add(ALL)
    hostvars = {}
    for name in listed:
        variables = {k: v for k, v in inventory.hosts[name].vars.items() if k not in INTERNAL_VARS}
        if variables:
            hostvars[name] = json_ready(variables)
    return {"_meta": {"hostvars": hostvars}, **result}


def dump_ansible_list(inventory: Inventory) -> str:
    """The text ``ansible-inventory --list`` prints (sorted keys, indent 4, UTF-8 as is)."""
    return json.dumps(to_ansible_list(inventory), sort_keys=True, indent=4, ensure_ascii=False)
