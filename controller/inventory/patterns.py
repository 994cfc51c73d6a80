"""Host patterns, as Ansible's ``hosts:`` and ``--limit``.

    all  *  web  web1.example.com  web*  *.example.com  ~(web|db)\\d+
    web:db  web,db        union
    web:&prod             intersection
    web:!web3             exclusion
    web[0]  web[1:3]  web[2:]   subscripts of what a pattern matched

Evaluated as Ansible does: the patterns without a prefix first (their union, in
order; ``all`` if there are none), then each ``&``, then each ``!``. A word matches
the groups it names (every host in them or below) and, when no group matched or
it is a glob or regex (``*?[.~``), the hosts it names. Globs match whole names,
case-sensitively; a ``~regex`` matches from the start of a name (``re.match``).
The result is in Ansible's order: each pattern's hosts in turn, a group's own
hosts before its children's. ``localhost``, ``127.0.0.1`` and ``::1`` match the
implicit localhost when the inventory does not declare them.

A pattern that matches nothing is not an error (Ansible warns and goes on):
``match`` reports it in ``Selection.unmatched`` for the caller to decide.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from controller.inventory.errors import InventoryError
from controller.inventory.model import Inventory
from controller.inventory.ranges import split_port, valid_address

_SUBSCRIPT = re.compile(r"(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]")
_COLON_SEPARATED = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_GLOB_OR_REGEX = (".", "?", "*", "[")


@dataclass(frozen=True)
class Selection:
    hosts: tuple[str, ...]
    unmatched: tuple[str, ...]  # single patterns that matched no group and no host


def split_pattern(pattern: str | Sequence[str]) -> list[str]:
    """``'web:!db,x'`` -> single patterns. Commas separate; else colons, unless the whole
    text is one host (``[::1]:22``) or a range (``web[1:3]``)."""
    if not isinstance(pattern, str):
        return [part for item in pattern for part in split_pattern(item)]
    if "," in pattern:
        parts = pattern.split(",")
    elif split_port(pattern)[1] is not None or valid_address(pattern):
        parts = [pattern]
    else:
        parts = _COLON_SEPARATED.findall(pattern)
    return [part.strip() for part in parts if part.strip()]


def _ordered(patterns: list[str]) -> list[str]:
    regular = [p for p in patterns if p[0] not in "&!"]
    return ((regular or ["all"]) + [p for p in patterns if p[0] == "&"]
            + [p for p in patterns if p[0] == "!"])


def _matcher(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern[1:] if pattern[0] == "~" else fnmatch.translate(pattern))
    except re.error as exc:
        raise InventoryError(f"invalid host pattern {pattern!r}: {exc}") from None


def _subscript(pattern: str) -> tuple[str, tuple[int, int | None] | None]:
    found = None if pattern[0] == "~" else _SUBSCRIPT.fullmatch(pattern)
    if not found:
        return pattern, None
    expression, index, start, _, end = found.groups()
    if index:
        return expression, (int(index), None)
    return expression, (int(start), int(end) if end else -1)


def _apply_subscript(hosts: list[str], subscript: tuple[int, int | None] | None,
                     pattern: str) -> list[str]:
    if not hosts or not subscript:
        return hosts
    start, end = subscript
    try:
        if end:  # as Ansible: [2:0] is [2], like a single index
            return hosts[start:(len(hosts) - 1 if end == -1 else end) + 1]
        return [hosts[start]]
    except IndexError:
        raise InventoryError(f"no hosts matched the subscripted pattern {pattern!r}") from None


class _Evaluation:
    """One pattern's evaluation. Ansible creates one implicit localhost, named as first
    asked for; the other localhost names then stand for it (``127.0.0.1:&localhost``)."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.implicit_name: str | None = None

    def _localhost(self, expression: str) -> str:
        host = self.inventory.implicit_hosts[expression]
        if not host.implicit:  # a declared localhost stands for all the names
            return host.name
        self.implicit_name = self.implicit_name or host.name
        return self.implicit_name

    def _enumerate(self, expression: str) -> tuple[list[str], bool]:
        """Hosts one pattern (no prefix or subscript) names; and whether it matched anything."""
        inventory = self.inventory
        matcher = _matcher(expression)
        groups = [name for name in inventory.groups if matcher.match(name)]
        hosts: dict[str, None] = {}
        for group in groups:
            hosts.update(dict.fromkeys(inventory.group_hosts(group)))
        if not groups or expression[0] == "~" or any(c in expression for c in _GLOB_OR_REGEX):
            hosts.update(dict.fromkeys(name for name in inventory.hosts if matcher.match(name)))
        if not hosts and expression in inventory.implicit_hosts:
            hosts[self._localhost(expression)] = None
        return list(hosts), bool(hosts or groups)

    def one(self, pattern: str) -> tuple[list[str], bool]:
        if pattern in self.inventory.hosts:  # a plain host name: no matching needed
            return [pattern], True
        bare = pattern[1:] if pattern[0] in "&!" else pattern
        expression, subscript = _subscript(bare)
        hosts, matched = self._enumerate(expression)
        return _apply_subscript(hosts, subscript, bare), matched or expression == "all"


def match(inventory: Inventory, pattern: str | Sequence[str]) -> Selection:
    """Evaluate a pattern (or a list of them, as a play's ``hosts:`` may be)."""
    evaluation = _Evaluation(inventory)
    selected: dict[str, None] = {}
    unmatched: list[str] = []
    for single in _ordered(split_pattern(pattern)):
        hosts, matched = evaluation.one(single)
        if not matched:
            unmatched.append(single)
        if single[0] == "!":
            for host in hosts:
                selected.pop(host, None)
        elif single[0] == "&":
            keep = set(hosts)
            selected = {host: None for host in selected if host in keep}
        else:
            selected.update(dict.fromkeys(hosts))
    return Selection(hosts=tuple(selected), unmatched=tuple(unmatched))


def select(inventory: Inventory, pattern: str | Iterable[str]) -> list[str]:
    """The host names a pattern selects, in Ansible's order; ``[]`` if none."""
    return list(match(inventory, pattern if isinstance(pattern, str) else list(pattern)).hosts)
