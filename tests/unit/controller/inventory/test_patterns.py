"""``patterns``: Ansible's host patterns, order and all."""

from __future__ import annotations

import pytest

from controller.inventory import Inventory, InventoryError, load_inventory, match, select
from controller.inventory.patterns import split_pattern
from tests.unit.controller.inventory.conftest import Write

INVENTORY = """\
solo
[web]
web1.example.com
web2.example.com
web3.lab
[db]
db1
db2
[prod:children]
web
db
[staging]
web3.lab
stage-db
"""


@pytest.fixture
def inventory(write: Write) -> Inventory:
    return load_inventory(write("hosts", INVENTORY))


@pytest.mark.parametrize(("pattern", "parts"), [
    ("web", ["web"]),
    ("web:db", ["web", "db"]),
    ("web:!db:&prod", ["web", "!db", "&prod"]),
    ("web, db ,", ["web", "db"]),
    ("web:db,x", ["web:db", "x"]),  # with a comma, colons are not separators
    ("web[1:3]", ["web[1:3]"]),  # a range is one pattern
    ("web[0]:db", ["web[0]", "db"]),
    ("host:22", ["host:22"]),  # a host with a port is one pattern
    ("2001:db8::1", ["2001:db8::1"]),
    ("a b", ["a", "b"]),
    (["web:db", "x"], ["web", "db", "x"]),
])
def test_split(pattern: str | list[str], parts: list[str]) -> None:
    assert split_pattern(pattern) == parts


# `all` walks its tree breadth first: ungrouped, prod, staging, then web and db below prod.
ALL = ["solo", "web3.lab", "stage-db", "web1.example.com", "web2.example.com", "db1", "db2"]


@pytest.mark.parametrize(("pattern", "hosts"), [
    ("all", ALL),
    ("*", ALL),
    ("web", ["web1.example.com", "web2.example.com", "web3.lab"]),
    ("db1", ["db1"]),
    ("db:web", ["db1", "db2", "web1.example.com", "web2.example.com", "web3.lab"]),
    ("db,solo", ["db1", "db2", "solo"]),
    ("prod:!web", ["db1", "db2"]),
    ("!web", ["solo", "stage-db", "db1", "db2"]),  # only exclusions: from all
    ("web:&staging", ["web3.lab"]),
    ("&staging:web", ["web3.lab"]),  # unions first, whatever the order written
    ("web:!staging:db", ["web1.example.com", "web2.example.com", "db1", "db2"]),
    ("*.example.com", ["web1.example.com", "web2.example.com"]),
    ("web*", ["web1.example.com", "web2.example.com", "web3.lab"]),  # group and hosts
    ("db?", ["db1", "db2"]),
    ("WEB", []),  # case-sensitive
    ("~db\\d", ["db1", "db2"]),
    ("~web", ["web1.example.com", "web2.example.com", "web3.lab"]),  # re.match: a prefix
    ("~(solo|stage)", ["solo", "stage-db"]),
    ("web[0]", ["web1.example.com"]),
    ("web[-1]", ["web3.lab"]),
    ("web[1:]", ["web2.example.com", "web3.lab"]),
    ("prod[1:2]", ["web2.example.com", "web3.lab"]),
    ("ungrouped", ["solo"]),
    ("localhost", ["localhost"]),  # the implicit localhost
    ("nosuch", []),
])
def test_select(inventory: Inventory, pattern: str, hosts: list[str]) -> None:
    assert select(inventory, pattern) == hosts


def test_a_group_lists_its_own_hosts_before_its_childrens(write: Write) -> None:
    inventory = load_inventory(write("hosts", "[c]\nc1\n[p]\np1\n[p:children]\nc\n"))
    assert select(inventory, "p") == ["p1", "c1"]
    assert select(inventory, "all") == ["p1", "c1"]  # `all` walks groups, not declarations


def test_unmatched_patterns_are_reported(inventory: Inventory) -> None:
    assert match(inventory, "web:nosuch:!typo").unmatched == ("nosuch", "!typo")
    assert match(inventory, "web:&staging").unmatched == ()
    assert select(inventory, "web:nosuch") == select(inventory, "web")


def test_an_empty_group_matches_without_hosts(write: Write) -> None:
    inventory = load_inventory(write("hosts", "[empty]\n"))
    assert match(inventory, "empty").unmatched == ()
    assert match(inventory, "empty").hosts == ()


@pytest.mark.parametrize(("pattern", "reason"), [
    ("~(", "invalid host pattern"),
    ("web[7]", "subscripted pattern"),
])
def test_errors(inventory: Inventory, pattern: str, reason: str) -> None:
    with pytest.raises(InventoryError, match=reason):
        select(inventory, pattern)


def test_the_implicit_localhost_is_one_host_under_the_first_name_asked(
        inventory: Inventory) -> None:
    assert select(inventory, "127.0.0.1:&localhost") == ["127.0.0.1"]
    assert select(inventory, "localhost,127.0.0.1,::1") == ["localhost"]
    assert select(inventory, "::1:!localhost") == []


def test_a_declared_localhost_answers_to_every_localhost_name(write: Write) -> None:
    inventory = load_inventory(write("hosts", "[local]\n127.0.0.1\n"))
    assert select(inventory, "localhost") == ["127.0.0.1"]


def test_no_inventory_all_is_localhost() -> None:
    assert select(load_inventory(None), "all") == ["localhost"]
    assert select(load_inventory(None), "localhost") == ["localhost"]
