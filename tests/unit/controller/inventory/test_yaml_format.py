"""``yaml_format``: Ansible's YAML inventory structure, warnings and errors."""

from __future__ import annotations

import datetime

import pytest

from controller.inventory import InventoryError, load_inventory
from tests.unit.controller.inventory.conftest import Load, Write

YAML = """\
all:
  vars: {everyone: 1}
  hosts:
    solo:
    "192.0.2.7:2200": {note: shorthand}
  children:
    web:
      hosts:
        web[1:2]: {tier: front}
      vars: {port: 80, ansible_group_priority: 4}
      children:
        canary:
          hosts: web1
    empty:
web:
  hosts:
    web3:
"""


def test_structure(load: Load) -> None:
    inventory = load(YAML, "inventory.yml")
    assert list(inventory.hosts) == ["solo", "192.0.2.7", "web1", "web2", "web3"]
    assert inventory.groups["all"].children == ("ungrouped", "web", "empty")
    assert inventory.groups["ungrouped"].hosts == ("solo", "192.0.2.7")
    assert inventory.groups["web"].hosts == ("web1", "web2", "web3")
    assert inventory.groups["web"].children == ("canary",)
    assert inventory.groups["web"].priority == 4
    assert "ansible_group_priority" not in inventory.groups["web"].vars
    assert inventory.hosts["192.0.2.7"].vars == {"everyone": 1, "ansible_port": 2200,
                                                 "note": "shorthand"}
    assert inventory.hosts["web1"].vars == {"everyone": 1, "port": 80, "tier": "front"}
    assert inventory.hosts["web1"].groups == ("all", "web", "canary")


def test_values_keep_their_yaml_types(load: Load) -> None:
    inventory = load("g:\n  hosts:\n    h:\n      d: 2024-05-01\n      n: ~\n      b: yes\n",
                     "inv.yaml")
    assert inventory.hosts["h"].vars == {"d": datetime.date(2024, 5, 1), "n": None, "b": True}


def test_entries_ansible_skips_become_warnings(load: Load) -> None:
    inventory = load("g:\n  hosts: {h: }\n  weird: 3\n  other: {a: 1}\nnot_a_group: [1]\n",
                     "inv.yml")
    assert list(inventory.groups) == ["all", "ungrouped", "g"]
    assert len(inventory.warnings) == 3
    assert "skipping key 'weird'" in inventory.warnings[0]
    assert "unexpected key 'other'" in inventory.warnings[1]
    assert "not_a_group" in inventory.warnings[2]


@pytest.mark.parametrize(("text", "reason"), [
    ("g:\n  hosts: [a, b]\n", "'hosts' must be a mapping"),
    ("g:\n  hosts:\n    8080:\n", "must be a string"),
    ("g:\n  hosts:\n    h: text\n", "variables must be a mapping"),
    ("123: {}\n", "not a non-empty string"),
    ("g:\n  children:\n    g:\n", "dependency loop"),
    ("g:\n  hosts:\n    h[3:1:x]:\n", "not a range"),
    ("plugin: aws_ec2\nregions: [x]\n", "plugin configuration"),
    ("- a\n- b\n", "must be a mapping of groups"),
    ("g:\n  hosts: {a:, b:}\n", "invalid YAML"),  # libyaml, as Ansible, refuses 'a:,'
    ("g: !!python/object:os.system {}\n", "invalid YAML"),
    ("g: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n", "invalid YAML"),
])
def test_errors(load: Load, text: str, reason: str) -> None:
    with pytest.raises(InventoryError, match=reason) as caught:
        load(text, "inv.yml")
    assert caught.value.file is not None


def test_yaml_errors_carry_the_line(load: Load) -> None:
    with pytest.raises(InventoryError, match="invalid YAML") as caught:
        load("g:\n  hosts:\n    h: {a: 1\n", "inv.yml")
    assert caught.value.line == 4


def test_empty_yaml_file_is_an_empty_inventory(load: Load) -> None:
    inventory = load("# nothing yet\n", "inv.yml")
    assert inventory.hosts == {}
    assert list(inventory.groups) == ["all", "ungrouped"]


def test_json_inventory(write: Write) -> None:
    inventory = load_inventory(write("inv.json", '{"g": {"hosts": {"h": {"x": [1]}}}}'))
    assert inventory.hosts["h"].vars == {"x": [1]}


def test_file_without_extension_holding_a_mapping_is_yaml(write: Write) -> None:
    inventory = load_inventory(write("hosts", "g:\n  hosts:\n    h:\n"))
    assert inventory.groups["g"].hosts == ("h",)


def test_a_skipped_child_is_still_linked_when_it_exists(load: Load) -> None:
    inventory = load("c:\n  hosts: {h: }\np:\n  children:\n    c: [1]\n", "inv.yml")
    assert inventory.groups["p"].children == ("c",)
    assert inventory.hosts["h"].groups == ("all", "p", "c")
