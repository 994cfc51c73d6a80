"""``ini``: Ansible's INI format, its value typing and its errors (with file and line)."""

from __future__ import annotations

from typing import Any

import pytest

from controller.inventory import InventoryError
from controller.inventory.ini import typed_value
from tests.unit.controller.inventory.conftest import Load, Write


@pytest.mark.parametrize(("text", "value"), [
    ("2222", 2222),
    ("1.5", 1.5),
    ("0x1F", 31),
    ("True", True),
    ("None", None),
    ("[1, 'two']", [1, "two"]),
    ("(1, 2)", [1, 2]),  # tuples and sets become lists
    ("{'a': {1, 2}}", {"a": [1, 2]}),
    ("'007'", "007"),  # quoted: a string
    ("007", "007"),  # not a Python literal (leading zero): the text
    ("yes", "yes"),  # Python, not YAML: yes is text
    ("1+2j", "(1+2j)"),  # complex numbers: their text
    ("...", "..."),
    ("b'by'", "by"),
    ("23 # note", 23),  # a Python comment after a literal
    ("abc # note", "abc # note"),
    ("C:\\data\\x", "C:\\data\\x"),
])
def test_typed_value(text: str, value: Any) -> None:
    assert typed_value(text) == value


def test_unhashable_literal_is_an_error_not_a_crash() -> None:
    with pytest.raises(InventoryError, match="cannot read value"):
        typed_value("{[]: 1}")


def test_hosts_groups_and_inline_vars(load: Load) -> None:
    inventory = load(
        "solo ansible_host=192.0.2.1\n"
        "[web]\n"
        "web1:2222 tier=front motd=\"a b\" # comment\n"
        "web2 ansible_port=22 x='\"q\"'\n"
        "; another comment\n"
        "[db]\n"
        "db1\n"
    )
    assert list(inventory.hosts) == ["solo", "web1", "web2", "db1"]
    assert inventory.groups["web"].hosts == ("web1", "web2")
    assert inventory.groups["ungrouped"].hosts == ("solo",)
    assert inventory.groups["all"].children == ("ungrouped", "web", "db")
    assert inventory.hosts["web1"].vars == {"ansible_port": 2222, "tier": "front", "motd": "a b"}
    # the shell-like split removes the single quotes, then "q" is a Python string literal
    assert inventory.hosts["web2"].vars == {"ansible_port": 22, "x": "q"}


def test_group_vars_sections_are_typed_like_host_values(load: Load) -> None:
    """Ansible's docs say :vars values are strings; ansible-inventory types them."""
    inventory = load("[web]\nw1\n[web:vars]\nport = 8080\nflag=False\ntext=a b # c\n"
                     "list=[1, 2]\neq=a=b\n")
    assert inventory.hosts["w1"].vars == {"port": 8080, "flag": False, "text": "a b # c",
                                          "list": [1, 2], "eq": "a=b"}


def test_children_and_vars_may_come_before_their_group(load: Load) -> None:
    inventory = load("[prod:children]\nweb\n[web:vars]\nx=1\n[web]\nw1\n"
                     "[late:vars]\ny=2\n[late]\nl1\n")
    assert inventory.groups["prod"].children == ("web",)
    assert inventory.hosts["w1"].groups == ("all", "prod", "web")
    assert inventory.hosts["w1"].vars == {"x": 1}
    assert inventory.hosts["l1"].vars == {"y": 2}


def test_a_host_repeated_keeps_its_first_port_and_merges_vars(load: Load) -> None:
    inventory = load("[a]\nh:2201 x=1\n[b]\nh:2202 y=2\n")
    assert inventory.hosts["h"].vars == {"ansible_port": 2201, "x": 1, "y": 2}
    assert inventory.hosts["h"].groups == ("all", "a", "b")


def test_host_port_zero_sets_no_port(load: Load) -> None:
    assert load("h:0\n").hosts["h"].vars == {}


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("[web]\nw1\n[web:hosts]\n[web:weird]\n", 4, "unknown type 'weird'"),
    ("[web]\n[web prod]\n", 2, "invalid section"),
    ("[web]\nw1 novalue\n", 2, "expected key=value host variable"),
    ("[web]\nw1:\n", 2, "trailing ':'"),
    ("[web]\n---\n", 2, "YAML"),
    ("[web]\nw1 x='unclosed\n", 2, "cannot split"),
    ("[web:children]\nweb\n", 2, "dependency loop"),
    ("[web]\nw[1:x]\n", 2, "not a range"),
    ("[web:vars]\nx\n", 2, "expected key=value"),
    ("[p:children]\na b\n", 2, "expected a group name"),
    ("[web]\nw1\n\n[db:vars]\nx=1\n", 4, r"\[db:vars\] is for a group that is never declared"),
    ("[p:children]\nmissing\n[q]\n", 2, r"\[p:children\] names group 'missing'"),
    ("[web]\nw1 ansible_group_priority=1\n[web:vars]\nansible_group_priority=x\n", 4,
     "must be an integer"),
])
def test_errors_name_file_and_line(load: Load, text: str, line: int, reason: str) -> None:
    with pytest.raises(InventoryError, match=reason) as caught:
        load(text)
    assert caught.value.file is not None
    assert caught.value.file.endswith("hosts")
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{caught.value.file}:{line}: ")


def test_a_vars_section_for_a_group_declared_only_as_a_child_is_an_error(load: Load) -> None:
    """Ansible's quirk: being a child does not declare a group for an earlier [g:vars]."""
    with pytest.raises(InventoryError, match=r"\[web:vars\]"):
        load("[web:vars]\nx=1\n[p]\nh\n[p:children]\nweb\n")


def test_non_utf8_is_an_error_with_its_line(write: Write) -> None:
    from controller.inventory import load_inventory

    with pytest.raises(InventoryError, match="not UTF-8") as caught:
        load_inventory(write("hosts", b"[web]\n# caf\xe9\nw1\n"))
    assert caught.value.line == 2


def test_empty_sections_declare_groups(load: Load) -> None:
    inventory = load("[empty]\n[parent:children]\n")
    assert inventory.groups["empty"].hosts == ()
    assert inventory.groups["all"].children == ("ungrouped", "empty", "parent")
