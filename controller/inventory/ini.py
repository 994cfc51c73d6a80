"""Ansible's INI inventory format.

    host1                                   # before any section: ungrouped
    [web]
    web[01:03].example.com:2222 tier=1 motd="a b"
    [web:vars]
    http_port=8080
    [prod:children]
    web

Values (``key=value``) on host lines *and* in ``[group:vars]`` go through
``ast.literal_eval``: ``2222`` is an int, ``[1, 2]`` a list, ``True`` a bool and
anything that is not a Python literal stays a string. Ansible's documentation says
``:vars`` values are strings, but ``ansible-inventory`` (the oracle of the tests)
types them like host values, and inventories are written against what Ansible
does. The difference between the two kinds of line is the splitting: a host line
is split like a shell line (quotes group, ``#`` starts a comment), a vars line is
``key=everything after the first '='`` (so ``x=1 # c`` is 1, Python's comment, but
``x=a # c`` is the string ``"a # c"``).

A ``[group:vars]`` or a ``[parent:children]`` entry may name a group declared later
in the file; a name never declared is an error at the line that used it.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from dataclasses import dataclass, field
from typing import Any

from controller.inventory.builder import UNGROUPED, InventoryBuilder
from controller.inventory.errors import InventoryError
from controller.inventory.ranges import expand_host_pattern

_COMMENT = (";", "#")
_SECTION = re.compile(r"\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?")
_GROUP_NAME = re.compile(r"([^:\]\s]+)\s*(?:#.*)?")


def typed_value(text: str) -> Any:
    """An INI value as Ansible types it: a Python literal if it is one, else the text."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # '\d' in a Windows path
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    except (TypeError, RecursionError, MemoryError):  # {[]: 1}, [[[[...]]]]
        raise InventoryError(f"cannot read value {text[:80]!r}") from None
    return _plain(value)


def _plain(value: Any) -> Any:
    """Literal types Ansible keeps as variables: tuples and sets become lists, bytes text,
    and ``...`` and complex numbers their text."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if value is ...:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise InventoryError(f"value {value!r} is not UTF-8") from None
    return value


@dataclass
class _Pending:
    """A group named before its declaration: by ``[name:vars]`` or as a child."""

    line: int
    state: str
    parents: list[str] = field(default_factory=list)


class _IniReader:
    def __init__(self, builder: InventoryBuilder, file: str) -> None:
        self.builder, self.file = builder, file
        self.pending: dict[str, _Pending] = {}
        self.group, self.state, self.line = UNGROUPED, "hosts", 0

    def read(self, lines: list[str]) -> None:
        for self.line, raw in enumerate(lines, start=1):
            text = raw.strip()
            if not text or text[0] in _COMMENT:
                continue
            try:
                self._one_line(text)
            except InventoryError as exc:
                raise InventoryError(exc.reason, self.file, self.line) from None
        for name, pending in self.pending.items():
            if pending.state == "vars":
                reason = f"section [{name}:vars] is for a group that is never declared"
            else:
                reason = (f"section [{pending.parents[-1]}:children] names group {name!r}, "
                          "which is never declared")
            raise InventoryError(reason, self.file, pending.line)

    def _one_line(self, text: str) -> None:
        section = _SECTION.fullmatch(text)
        if section:
            self._section(section[1], section[2] or "hosts")
        elif text.startswith("[") and text.endswith("]"):
            raise InventoryError(f"invalid section {text!r}: no spaces or other invalid "
                                 "characters are allowed in a section name")
        elif self.state == "hosts":
            self._hosts(text)
        elif self.state == "vars":
            key, sep, value = text.partition("=")
            if not sep:
                raise InventoryError(f"expected key=value, got {text!r}")
            self.builder.set_group_var(self.group, key.strip(), typed_value(value.strip()))
        else:
            self._child(text)

    def _section(self, name: str, state: str) -> None:
        if state not in ("hosts", "children", "vars"):
            raise InventoryError(f"section [{name}:{state}] has unknown type {state!r} "
                                 "(expected children or vars)")
        self.group, self.state = name, state
        if name not in self.builder.groups:
            if state == "vars" and name not in self.pending:
                self.pending[name] = _Pending(self.line, state)
            self.builder.add_group(name)
        if name in self.pending and state != "vars":
            self._declared(name)

    def _declared(self, name: str) -> None:
        pending = self.pending.pop(name)
        for parent in pending.parents:
            self.builder.add_child(parent, name)
            if parent in self.pending and self.pending[parent].state == "children":
                self._declared(parent)

    def _child(self, text: str) -> None:
        found = _GROUP_NAME.fullmatch(text)
        if not found:
            raise InventoryError(f"expected a group name, got {text!r}")
        child = found[1]
        if child in self.builder.groups:
            self.builder.add_child(self.group, child)
        elif child in self.pending:
            self.pending[child].parents.append(self.group)
        else:
            self.pending[child] = _Pending(self.line, "children", [self.group])

    def _hosts(self, text: str) -> None:
        try:
            tokens = shlex.split(text, comments=True)
        except ValueError as exc:
            raise InventoryError(f"cannot split host line {text!r}: {exc}") from None
        if not tokens:  # a line such as '""'
            raise InventoryError("empty host name")
        names, port = expand_host_pattern(tokens[0])
        if tokens[0].strip().endswith(":") and port is None:
            raise InventoryError(f"invalid host pattern {tokens[0]!r}: a trailing ':' must "
                                 "be followed by a port")
        if any(name.strip() == "---" for name in names):
            raise InventoryError("host '---' is normally a sign that this is a YAML file")
        variables: dict[str, Any] = {}
        for token in tokens[1:]:
            key, sep, value = token.partition("=")
            if not sep:
                raise InventoryError(f"expected key=value host variable, got {token!r}")
            variables[key] = typed_value(value)
        for name in names:
            self.builder.add_host(name, self.group, port)
            for key, value in variables.items():
                self.builder.set_host_var(name, key, value)


def _lines(data: bytes, file: str) -> list[str]:
    """UTF-8 text only, comments included (Ansible's own exception for comments never fires)."""
    try:
        return data.decode().splitlines()
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InventoryError("not UTF-8 text", file, line) from None


def read_ini(builder: InventoryBuilder, data: bytes, file: str) -> None:
    """Add one INI inventory file's hosts, groups and variables to ``builder``."""
    _IniReader(builder, file).read(_lines(data, file))
