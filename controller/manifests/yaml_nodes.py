"""YAML to plain Python with the position of every value, refusing YAML's traps.

PyYAML's safe loader composes the node tree; this module builds the values
itself so it can (a) record where each field path came from, (b) reject
duplicate keys (a key written in the mapping itself overrides one brought in by a
``<<`` merge key, as YAML merges do), (c) reject values that YAML 1.1 silently
turned into something the user did not write: base-60 numbers (``22:22`` ->
1342), octal/hex/underscored numbers and other non-decimal spellings (``0022``
-> 18, ``1.10`` -> 1.1), dates, binary; (d) bound the work an alias bomb or deep
nesting can cause. Every fault is a ``YamlProblem`` with a position, never a
traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.error import Mark
from yaml.events import ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from controller.errors import ControllerError

Path = tuple[str | int, ...]
MAX_NODES = 200_000
MAX_DEPTH = 64
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")  # what YAML counts as a new line
_PLAIN_TYPES = (str, int, float, bool, type(None))
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
_SHOWN = 40  # characters of a scalar quoted in a message


class YamlProblem(ControllerError):
    """Internal to the manifest loader, which reports it as ``file:line:column``."""

    def __init__(self, message: str, node: Node | None, path: Path = (), *,
                 mark: Mark | None = None) -> None:
        super().__init__(message)
        self.message = message
        mark = node.start_mark if node is not None else mark
        self.line = mark.line + 1 if mark is not None else 1
        self.column = mark.column + 1 if mark is not None else 1
        self.path = path


def _too_deep(mark: Mark | None) -> YamlProblem:
    return YamlProblem(f"nested too deeply (more than {MAX_DEPTH} levels)", None, mark=mark)


def _show(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, bounded in depth, remembering what its nodes forget.

    ``tagged``: the scalars written with an explicit tag (``!!int 0755``), whose
    type the user asked for. ``local_pairs``: per flattened mapping, how many of its
    pairs were written in it, not brought in by a ``<<`` merge key (flattening puts
    the merged pairs first and drops the ``<<`` keys).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.tagged: set[Node] = set()
        self.local_pairs: dict[Node, int] = {}
        self.flattening: set[Node] = set()
        self.merged_pairs = 0  # per document

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        # The composer recurses per level: stop long before Python's recursion limit.
        self.depth += 1
        try:
            # Depth 1 is a document's root, level 0. A scalar key (index None) is not a
            # level of its own: _Builder.build does not count it either.
            scalar_key = parent is not None and index is None and self.check_event(ScalarEvent)
            if self.depth > MAX_DEPTH + 1 and not scalar_key:
                raise _too_deep(self.peek_event().start_mark)  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def compose_scalar_node(self, anchor: Any) -> ScalarNode:
        explicit = self.peek_event().tag is not None  # type: ignore[no-untyped-call]
        node = super().compose_scalar_node(anchor)
        if explicit:
            self.tagged.add(node)
        return node

    def flatten_mapping(self, node: MappingNode) -> None:
        """PyYAML's merge (``<<``) flattening, bounded, and remembering the local pairs.

        As PyYAML: the ``<<`` keys are dropped and the merged pairs put first, those of
        ``<<: [*a, *b]`` as b's then a's (the later pair of a key wins, so a local key
        beats a merged one and a's beat b's). Unlike PyYAML: each mapping is flattened
        once, a mapping that merges itself is an error, and at most ``MAX_NODES``
        pairs are merged per document (nested merges multiply: a merge bomb).
        """
        if node in self.local_pairs:
            if node in self.flattening:
                raise ConstructorError("while merging a mapping", node.start_mark,
                                       "a mapping cannot merge itself (a recursive alias)",
                                       node.start_mark)
            return
        self.local_pairs[node] = sum(1 for key, _ in node.value if key.tag != _MERGE)
        self.flattening.add(node)
        try:
            merged: list[tuple[Node, Node]] = []
            local: list[tuple[Node, Node]] = []
            for key_node, value_node in node.value:
                if key_node.tag != _MERGE:
                    if key_node.tag == "tag:yaml.org,2002:value":  # as PyYAML: '=' is text
                        key_node.tag = "tag:yaml.org,2002:str"
                    local.append((key_node, value_node))
                    continue
                sources = value_node.value if isinstance(value_node, SequenceNode) else [
                    value_node]
                for source in sources:
                    if not isinstance(source, MappingNode):
                        raise ConstructorError(
                            "while constructing a mapping", node.start_mark,
                            "expected a mapping or list of mappings for merging, "
                            f"but found {source.id}", source.start_mark)
                    self.flatten_mapping(source)
                    self.merged_pairs += len(source.value)
                    if self.merged_pairs > MAX_NODES:
                        raise ConstructorError(
                            "while constructing a mapping", node.start_mark,
                            f"more than {MAX_NODES} keys merged (a merge-key bomb?)",
                            value_node.start_mark)
                for source in reversed(sources):
                    merged.extend(source.value)
            node.value = merged + local
        finally:
            self.flattening.discard(node)


@dataclass
class Positions:
    """Where each field path's key and value start (1-based line, column)."""

    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)


def _mark(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    def __init__(self, loader: _Loader) -> None:
        self.loader = loader
        self.positions = Positions()
        self.count = 0
        self.current: Mark | None = None  # where the node being built starts

    def build(self, node: Node, path: Path = (), depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlProblem(f"more than {MAX_NODES} values (an alias bomb?)", node, path)
        if depth > MAX_DEPTH:
            raise YamlProblem(f"nested deeper than {MAX_DEPTH} levels (a recursive alias?)",
                              node, path)
        self.current = node.start_mark
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
        except (ValueError, KeyError, AttributeError, IndexError, OverflowError) as exc:
            raise YamlProblem(self._unreadable(node, exc), node, path) from None
        if node.tag in (_INT, _FLOAT):
            if _SEXAGESIMAL.match(node.value):
                raise YamlProblem(
                    f"unquoted {node.value} was read by YAML 1.1 as the base-60 number {value}; "
                    f'quote it ("{node.value}")', node, path)
            if node not in self.loader.tagged:
                self._check_canonical(node, value, path)
        if not isinstance(value, _PLAIN_TYPES):
            raise YamlProblem(
                f"unquoted {node.value!r} was read by YAML as {type(value).__name__}; "
                f'quote it ("{node.value}")', node, path)
        return value

    def _unreadable(self, node: ScalarNode, exc: Exception) -> str:
        """A scalar whose (implicit or explicit) tag's constructor failed on its text."""
        shown = _show(node.value)
        explicit = node in self.loader.tagged
        if "integer string conversion" in str(exc):
            what = f"has too many digits ({len(node.value)}) to be read as a number"
            return f"{shown!r} {what}" if explicit else f"unquoted {shown} {what}; quote it"
        kind = node.tag.rsplit(":", 1)[-1]
        reason = f" ({exc})" if node.tag == _TIMESTAMP and isinstance(exc, ValueError) else ""
        if explicit:
            return f"{shown!r} is not a valid !!{kind}{reason}"
        if node.tag == _TIMESTAMP:
            kind = "date" if len(node.value) <= len("2024-01-15") else "date and time"
        return f'unquoted {shown} is not a valid {kind}{reason}; quote it ("{shown}")'

    @staticmethod
    def _check_canonical(node: ScalarNode, value: int | float, path: Path) -> None:
        """An implicit number must be spelled as Python writes it: ``0022``, ``1.10``,
        ``0x1F``, ``1_000``, ``+5``, ``.inf`` are text the user meant, not 18, 1.1, ..."""
        try:
            canonical = str(value) if isinstance(value, int) else repr(value)
        except ValueError:  # an octal or hex number too long to write in decimal
            raise YamlProblem(f"unquoted {_show(node.value)} has too many digits "
                              f"({len(node.value)}) to be read as a number; quote it",
                              node, path) from None
        if node.value != canonical:
            shown = _show(node.value)
            raise YamlProblem(f"unquoted {shown} is read by YAML 1.1 as the number "
                              f'{_show(canonical)}; quote it ("{shown}")', node, path)

    def _key(self, node: Node, path: Path) -> str:
        key = self._scalar(node, path) if isinstance(node, ScalarNode) else None
        if not isinstance(key, str):
            raise YamlProblem("mapping keys must be plain strings "
                              "(quote yes/no/on/off/numbers used as keys)", node, path)
        return key

    def _mapping(self, node: MappingNode, path: Path, depth: int) -> dict[str, Any]:
        if node.tag != "tag:yaml.org,2002:map":
            raise YamlProblem(f"tag {node.tag} is not allowed here", node, path)
        try:
            self.loader.flatten_mapping(node)  # YAML merge keys (<<): merged pairs come first
        except ConstructorError as exc:
            raise YamlProblem(f"merge key <<: {exc.problem}", None, path,
                              mark=exc.problem_mark or node.start_mark) from None
        pairs = node.value
        first_local = len(pairs) - self.loader.local_pairs.get(node, len(pairs))
        keys = [self._key(key_node, path) for key_node, _ in pairs]
        # As PyYAML's own construct_mapping: the last pair of a key wins (a local key
        # over merged ones; among merged ones, the mapping listed first in ``<<: [...]``),
        # and the key keeps the place of its first pair.
        winner = {key: index for index, key in enumerate(keys)}
        values: dict[str, Any] = {}
        local_line: dict[str, int] = {}
        for index, (key, (key_node, value_node)) in enumerate(zip(keys, pairs, strict=True)):
            if index >= first_local:
                if key in local_line:
                    raise YamlProblem(f"duplicate key {key!r} (first at line {local_line[key]})",
                                      key_node, (*path, key))
                local_line[key] = key_node.start_mark.line + 1
            if winner[key] == index:
                self.positions.keys[(*path, key)] = _mark(key_node)
                values[key] = self.build(value_node, (*path, key), depth + 1)
        return {key: values[key] for key in winner}


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


def _text_mark(text: str, index: int) -> Mark:
    """The mark of character ``index`` of ``text``, counting lines as YAML does."""
    line, line_start = 0, 0
    for match in _LINE_BREAK.finditer(text, 0, index):
        line, line_start = line + 1, match.end()
    return Mark("<unicode string>", index, line, index - line_start, None, index)


def load_documents(text: str) -> list[LoadedDocument]:
    """Every document of a YAML stream, with positions; ``YamlProblem`` on the first fault."""
    loader: _Loader | None = None
    builder: _Builder | None = None
    documents: list[LoadedDocument] = []
    try:
        loader = _Loader(text)  # it checks every character: inside the try
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            loader.merged_pairs = 0
            builder = _Builder(loader)
            value = builder.build(node)
            line, column = _mark(node)
            if value is None:  # an empty document: point at its '---', not what follows
                line, column = _document_start(text, line), 1
            documents.append(LoadedDocument(len(documents), value, line, column,
                                            builder.positions))
            builder = None
    except ReaderError as exc:
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        escape = f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
        raise YamlProblem(
            f"unacceptable character #x{code:04x}: control and other non-printable characters "
            f'are not allowed in YAML text (in a double-quoted string, write "{escape}")',
            None, mark=_text_mark(text, exc.position)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = ""
        if exc.context and exc.context_mark and exc.context_mark is not mark:
            opened = exc.context_mark
            context = f" ({exc.context} opened at {opened.line + 1}:{opened.column + 1})"
        raise YamlProblem(f"YAML syntax: {exc.problem or exc.context}{context}", None,
                          mark=mark) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"YAML: {exc}", None) from None
    except RecursionError:
        # A backstop: compose_node and _Builder.build bound the nesting long before this.
        mark = builder.current if builder is not None else None
        if mark is None and loader is not None:
            mark = loader.get_mark()
        raise _too_deep(mark) from None
    finally:
        if loader is not None:
            loader.dispose()
    return documents
