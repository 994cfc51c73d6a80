"""``connection``: Ansible's connection variables -> ``Connection``."""

from __future__ import annotations

from typing import Any

import pytest

from controller.inventory import Connection, Host, InventoryError, connection_for, load_inventory


def host(**variables: Any) -> Host:
    return Host(name="web1", vars=variables, groups=("all",))


def test_defaults() -> None:
    assert connection_for(host()) == Connection(host="web1", port=22, user=None, key_file=None,
                                                connection="ssh", python=None)


def test_variables() -> None:
    found = connection_for(host(ansible_host="192.0.2.1", ansible_port=2222,
                                ansible_user="deploy", ansible_private_key_file="~/.ssh/k",
                                ansible_python_interpreter="/usr/bin/python3"))
    assert found == Connection(host="192.0.2.1", port=2222, user="deploy", key_file="~/.ssh/k",
                               connection="ssh", python="/usr/bin/python3")


def test_ssh_aliases_win_when_both_are_set() -> None:
    found = connection_for(host(ansible_host="a", ansible_ssh_host="b", ansible_port=1,
                                ansible_ssh_port="2", ansible_user="u", ansible_ssh_user="v",
                                ansible_private_key_file="k", ansible_ssh_private_key_file="l"))
    assert (found.host, found.port, found.user, found.key_file) == ("b", 2, "v", "l")


def test_an_alias_set_to_none_does_not_count() -> None:
    assert connection_for(host(ansible_host="a", ansible_ssh_host=None)).host == "a"


@pytest.mark.parametrize(("value", "kind"), [
    ("local", "local"), ("ssh", "ssh"), ("smart", "ssh"), ("paramiko", "ssh"),
    ("ansible.builtin.local", "local"),
])
def test_connection_kinds(value: str, kind: str) -> None:
    assert connection_for(host(ansible_connection=value)).connection == kind


@pytest.mark.parametrize(("variables", "reason"), [
    ({"ansible_connection": "docker"}, "not supported"),
    ({"ansible_port": "ssh"}, "not a port"),
    ({"ansible_port": 70000}, "not a port"),
    ({"ansible_port": 0}, "not a port"),
    ({"ansible_host": "{{ inventory_hostname }}.example.com"}, "template"),
    ({"ansible_user": ["a"]}, "must be text"),
])
def test_unusable_values(variables: dict[str, Any], reason: str) -> None:
    with pytest.raises(InventoryError, match=reason):
        connection_for(host(**variables))


def test_no_inventory_connects_locally() -> None:
    inventory = load_inventory(None)
    assert connection_for(inventory.host("localhost")).connection == "local"
