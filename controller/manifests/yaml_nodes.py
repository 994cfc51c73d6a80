"""YAML to plain Python with the position of every value, refusing YAML's traps.

PyYAML's safe loader composes the node tree; this module builds the values
itself so it can (a) record where each field path came from, (b) reject
duplicate keys, (c) reject values that YAML 1.1 silently turned into something
the user did not write: base-60 numbers (``22:22`` -> 1342), dates, binary;
(d) bound the work an alias bomb can cause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path = tuple[str | int, ...]
MAX_NODES = 200_000
MAX_DEPTH = 64
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
_PLAIN_TYPES = (str, int, float, bool, type(None))


class YamlProblem(Exception):
    def __init__(self, message: str, node: Node | None, path: Path = ()) -> None:
        super().__init__(message)
        self.message = message
        self.line = node.start_mark.line + 1 if node is not None else 1
        self.column = node.start_mark.column + 1 if node is not None else 1
        self.path = path


@dataclass
class Positions:
    """Where each field path's key and value start (1-based line, column)."""

    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)


def _mark(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.positions = Positions()
        self.count = 0

    def build(self, node: Node, path: Path = (), depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlProblem(f"more than {MAX_NODES} values (an alias bomb?)", node, path)
        if depth > MAX_DEPTH:
            raise YamlProblem(f"nested deeper than {MAX_DEPTH} levels (a recursive alias?)",
                              node, path)
        self.positions.values.setdefault(path, _mark(node))
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                raise YamlProblem(f"tag {node.tag} is not allowed here", node, path)
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if not isinstance(node, ScalarNode):
            raise YamlProblem(f"unexpected YAML node {type(node).__name__}", node, path)
        return self._scalar(node, path)

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        try:
            value = self.loader.construct_object(node, deep=True)
        except ConstructorError as exc:
            raise YamlProblem(f"{exc.problem} (only plain YAML is accepted)", node, path) from None
        if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and (
            _SEXAGESIMAL.match(node.value)
        ):
            raise YamlProblem(
                f"unquoted {node.value} was read by YAML 1.1 as the base-60 number {value}; "
                f'quote it ("{node.value}")', node, path)
        if not isinstance(value, _PLAIN_TYPES):
            raise YamlProblem(
                f"unquoted {node.value!r} was read by YAML as {type(value).__name__}; "
                f'quote it ("{node.value}")', node, path)
        return value

    def _mapping(self, node: MappingNode, path: Path, depth: int) -> dict[str, Any]:
        if node.tag != "tag:yaml.org,2002:map":
            raise YamlProblem(f"tag {node.tag} is not allowed here", node, path)
        try:
            self.loader.flatten_mapping(node)  # YAML merge keys (<<)
        except ConstructorError as exc:
            raise YamlProblem(str(exc.problem), node, path) from None
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = self._scalar(key_node, path) if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str):
                raise YamlProblem("mapping keys must be plain strings "
                                  "(quote yes/no/on/off/numbers used as keys)", key_node, path)
            if key in result:
                raise YamlProblem(f"duplicate key {key!r} (first at line {first_line[key]})",
                                  key_node, (*path, key))
            first_line[key] = key_node.start_mark.line + 1
            self.positions.keys[(*path, key)] = _mark(key_node)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result


@dataclass(frozen=True)
class LoadedDocument:
    index: int  # 0-based position in the file
    value: Any
    line: int
    column: int
    positions: Positions


def _document_start(text: str, line: int) -> int:
    """The line of the last '---' at or before ``line`` (1-based)."""
    lines = text.splitlines()
    for number in range(min(line, len(lines)), 0, -1):
        if lines[number - 1].startswith("---"):
            return number
    return max(1, min(line, len(lines)))


def load_documents(text: str) -> list[LoadedDocument]:
    """Every document of a YAML stream, with positions; ``YamlProblem`` on the first fault."""
    loader = yaml.SafeLoader(text)
    documents: list[LoadedDocument] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            builder = _Builder(loader)
            value = builder.build(node)
            line, column = _mark(node)
            if value is None:  # an empty document: point at its '---', not what follows
                line, column = _document_start(text, line), 1
            documents.append(LoadedDocument(len(documents), value, line, column,
                                            builder.positions))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = ""
        if exc.context and exc.context_mark and exc.context_mark is not mark:
            opened = exc.context_mark
            context = f" ({exc.context} opened at {opened.line + 1}:{opened.column + 1})"
        problem = YamlProblem(f"YAML syntax: {exc.problem or exc.context}{context}", None)
        if mark is not None:
            problem.line, problem.column = mark.line + 1, mark.column + 1
        raise problem from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"YAML: {exc}", None) from None
    finally:
        loader.dispose()
    return documents
