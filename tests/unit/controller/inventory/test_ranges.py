"""``ranges``: host ranges and the host:port shorthand, as Ansible expands them."""

from __future__ import annotations

import pytest

from controller.inventory import InventoryError
from controller.inventory.ranges import (
    MAX_HOSTS_PER_PATTERN,
    expand_host_pattern,
    expand_range,
    split_port,
)


@pytest.mark.parametrize(("pattern", "names"), [
    ("web", ["web"]),
    ("web[1:3]", ["web1", "web2", "web3"]),
    ("web[01:03].example.com", ["web01.example.com", "web02.example.com", "web03.example.com"]),
    ("web[08:10]", ["web08", "web09", "web10"]),
    ("db-[a:c]", ["db-a", "db-b", "db-c"]),
    ("x[y:B]", ["xy", "xz", "xA", "xB"]),  # letters run a..z then A..Z
    ("n[1:10:4]", ["n1", "n5", "n9"]),
    ("n[a:g:3]", ["na", "nd", "ng"]),
    ("n[:2]", ["n0", "n1", "n2"]),  # an empty begin is 0
    ("r[1:2]-[a:b]", ["r1-a", "r1-b", "r2-a", "r2-b"]),  # the first range varies slowest
    ("10.0.0.[1:2]", ["10.0.0.1", "10.0.0.2"]),
    ("n[5:1]", []),  # numbers backwards: no hosts, as Python's range()
    ("n[1:1]", ["n1"]),
    ("web]1:3[", ["web1", "web2", "web3"]),  # the first '[' and first ']', as Ansible reads
])
def test_expand_range(pattern: str, names: list[str]) -> None:
    assert expand_range(pattern) == names


@pytest.mark.parametrize(("pattern", "reason"), [
    ("web[01:100]", "same number of digits"),
    ("web[c:a]", "begin <= end"),
    ("web[1]", "begin:end"),
    ("web[1:2:3:4]", "begin:end"),
    ("web[1:]", "end value"),
    ("web[1:x]", "not a range"),
    ("web[1:3:0]", "not a range"),
    ("web[1:3", "expected one"),
])
def test_bad_ranges_are_errors(pattern: str, reason: str) -> None:
    with pytest.raises(InventoryError, match=reason):
        expand_range(pattern)


def test_a_range_too_large_is_refused() -> None:
    with pytest.raises(InventoryError, match="more than"):
        expand_range(f"h[0:{MAX_HOSTS_PER_PATTERN}]")


@pytest.mark.parametrize(("pattern", "expected"), [
    ("web1", ("web1", None)),
    ("web1:2222", ("web1", 2222)),
    ("web1.example.com:22", ("web1.example.com", 22)),
    ("192.0.2.1:2200", ("192.0.2.1", 2200)),
    ("[2001:db8::1]:2222", ("2001:db8::1", 2222)),
    ("2001:db8::1", ("2001:db8::1", None)),  # an IPv6 port needs brackets
    ("web[01:03]:2222", ("web[01:03]", 2222)),
    ("[fe80::1%eth0]:22", ("[fe80::1%eth0]:22", None)),  # scoped: not a host identifier
    ("bad_:22", ("bad_:22", None)),  # a label may not end with '_': all of it is the name
    ("a b:22", ("a b:22", None)),
    ("web1:ssh", ("web1:ssh", None)),
])
def test_split_port(pattern: str, expected: tuple[str, int | None]) -> None:
    assert split_port(pattern) == expected


def test_expand_host_pattern_returns_names_and_port() -> None:
    assert expand_host_pattern("db-[a:b]:5432") == (["db-a", "db-b"], 5432)
