"""``load_inventory``: no inventory, files, directories, formats and the implicit localhost."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.inventory import InventoryError, load_inventory
from controller.inventory.loader import source_files
from tests.unit.controller.inventory.conftest import Load, Write


def test_no_inventory_is_localhost_reached_locally() -> None:
    inventory = load_inventory(None)
    assert list(inventory.hosts) == ["localhost"]
    host = inventory.hosts["localhost"]
    assert host.vars == {"ansible_connection": "local"}
    assert host.implicit
    assert host.groups == ("all", "ungrouped")
    assert inventory.group_hosts("all") == ["localhost"]


def test_a_directory_is_its_inventory_files_in_sorted_order(write: Write,
                                                            tmp_path: Path) -> None:
    write("b.yml", "g:\n  hosts: {from-yaml: }\n")
    write("a.ini", "[g]\nfrom-ini\n")
    write("c/hosts", "[g]\nfrom-subdir\n")
    for ignored in ("README.md", "notes.txt", "ansible.cfg", "x.retry", "old~", "x.bak",
                    ".hidden", "group_vars/g", "host_vars/h", "vars_plugins/p"):
        write(ignored, "{[broken\n")
    write("group_vars/g", "v: 1\n")
    assert [str(p.relative_to(tmp_path)) for p in source_files(tmp_path)] == [
        "a.ini", "b.yml", "c/hosts"]
    inventory = load_inventory(tmp_path)
    assert inventory.groups["g"].hosts == ("from-ini", "from-yaml", "from-subdir")


def test_vars_dirs_are_those_beside_the_file_or_in_the_directory(write: Write,
                                                                tmp_path: Path) -> None:
    write("inv/hosts", "h\n")
    write("inv/host_vars/h.yml", "x: 1\n")
    write("inv/sub/host_vars/h.yml", "x: nested dirs have no vars dirs\n")
    assert load_inventory(tmp_path / "inv").hosts["h"].vars == {"x": 1}
    assert load_inventory(tmp_path / "inv" / "hosts").hosts["h"].vars == {"x": 1}


@pytest.mark.parametrize(("name", "text", "group"), [
    ("hosts", "[g]\nh\n", "g"),  # no extension, not YAML: INI
    ("hosts", "g:\n  hosts: {h: }\n", "g"),  # no extension, a mapping: YAML
    ("hosts.ini", "[g]\nh\n", "g"),
    ("inventory.cfg", "[g]\nh\n", "g"),  # given directly, any other extension is INI
])
def test_format_choice(load: Load, name: str, text: str, group: str) -> None:
    assert load(text, name).groups[group].hosts == ("h",)


def test_errors_are_inventory_errors(write: Write, tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="no such inventory") as caught:
        load_inventory(tmp_path / "missing")
    assert caught.value.file == str(tmp_path / "missing")
    with pytest.raises(InventoryError, match="TOML"):
        load_inventory(write("inv.toml", "[g]\n"))


@pytest.mark.parametrize("name", ["hosts", "hosts.ini", "inv.yml"])
def test_vault_encrypted_inventories_are_refused(write: Write, name: str) -> None:
    with pytest.raises(InventoryError, match="vault-encrypted"):
        load_inventory(write(name, "$ANSIBLE_VAULT;1.1;AES256\n61626364\n"))


def test_unreadable_file_in_a_directory(tmp_path: Path) -> None:
    (tmp_path / "hosts").symlink_to(tmp_path / "missing")
    with pytest.raises(InventoryError, match="cannot read") as caught:
        load_inventory(tmp_path)
    assert caught.value.file == str(tmp_path / "hosts")


def test_implicit_localhost_when_not_declared(write: Write) -> None:
    path = write("hosts", "[web]\nw1\n[all:vars]\nx=file\ny=file\nansible_connection=ssh\n")
    write("group_vars/all.yml", "x: group_vars\n")
    write("host_vars/localhost.yml", "z: 1\n")
    inventory = load_inventory(path)
    assert "localhost" not in inventory.hosts
    host = inventory.host("localhost")
    assert host.implicit
    assert host.groups == ()
    assert host.vars == {"x": "group_vars", "y": "file", "ansible_connection": "local", "z": 1}
    assert inventory.host("127.0.0.1").vars["ansible_connection"] == "local"
    with pytest.raises(KeyError):
        inventory.host("w2")


def test_a_declared_localhost_stands_for_all_its_names(load: Load) -> None:
    inventory = load("127.0.0.1 x=1\n")
    assert inventory.host("localhost") is inventory.hosts["127.0.0.1"]
    assert not inventory.hosts["127.0.0.1"].implicit
    assert inventory.hosts["127.0.0.1"].vars == {"x": 1}  # no ansible_connection: ssh


def test_group_and_host_of_the_same_name_is_a_warning(load: Load) -> None:
    inventory = load("[web]\nweb\n")
    assert inventory.warnings == ("found both a group and a host named 'web'",)
