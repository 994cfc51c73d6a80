"""``ansible_json``: the structure of ``ansible-inventory --list``."""

from __future__ import annotations

import json

from controller.inventory import dump_ansible_list, load_inventory, to_ansible_list
from tests.unit.controller.inventory.conftest import Load


def test_structure(load: Load) -> None:
    inventory = load("solo\nbare\n[web]\nw1 x=1\n[web:children]\ncanary\n[canary]\n[empty]\n"
                     "[all:vars]\ninventory_hostname=hidden\ngroup_names=hidden\n")
    assert to_ansible_list(inventory) == {
        "_meta": {"hostvars": {}},  # only Ansible's reserved names were set: none left
        "all": {"children": ["ungrouped", "web", "empty"]},
        "ungrouped": {"hosts": ["solo", "bare"]},
        "web": {"hosts": ["w1"], "children": ["canary"]},
    } | {"_meta": {"hostvars": {"w1": {"x": 1}}}}


def test_values_are_json_ready(load: Load) -> None:
    inventory = load("g:\n  hosts:\n    h:\n      d: 2024-05-01\n      t: 2024-05-01 10:00:00\n"
                     "      k: {2: a, true: b, null: c, 1.5: d}\n      b: !!binary aGk=\n"
                     "      s: !!set {a}\n", "inv.yml")
    assert to_ansible_list(inventory)["_meta"]["hostvars"]["h"] == {
        "d": "2024-05-01", "t": "2024-05-01T10:00:00",
        "k": {"2": "a", "true": "b", "null": "c", "1.5": "d"}, "b": "hi", "s": ["a"]}


def test_no_inventory_lists_no_host() -> None:
    assert to_ansible_list(load_inventory(None)) == {"_meta": {"hostvars": {}},
                                                     "all": {"children": ["ungrouped"]}}


def test_dump_is_sorted_indented_utf8(load: Load) -> None:
    text = dump_ansible_list(load('h x="é"\n'))
    assert '"x": "é"' in text
    assert text.startswith('{\n    "_meta": {')
    assert json.loads(text)["ungrouped"] == {"hosts": ["h"]}
