"""``controller.manifests.yaml_nodes``: YAML text -> plain values with positions, or a YamlProblem.

Every fault must be a ``YamlProblem`` with a line and column (the CLI turns it into
``file:line:column`` and exit 4), never a traceback.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

import pytest
import yaml

from controller.errors import ControllerError
from controller.manifests.yaml_nodes import MAX_DEPTH, YamlProblem, load_documents


def load_one(text: str) -> Any:
    (document,) = load_documents(text)
    return document.value


def problem(text: str) -> YamlProblem:
    with pytest.raises(YamlProblem) as info:
        load_documents(text)
    return info.value


def test_yaml_problem_belongs_to_the_controller_error_tree() -> None:
    assert issubclass(YamlProblem, ControllerError)


# 1. Faults that used to escape as a traceback.


@pytest.mark.parametrize(
    ("text", "line", "column", "path", "message"),
    [
        ("name: 2024-13-45\n", 1, 7, ("name",), "is not a valid date (month must be in 1..12)"),
        ("a: 1\nb: 2024-02-30\n", 2, 4, ("b",), "is not a valid date (day is out of range"),
        ("n: !!int abc\n", 1, 4, ("n",), "'abc' is not a valid !!int"),
        ("n: !!float abc\n", 1, 4, ("n",), "'abc' is not a valid !!float"),
        ("n: !!bool maybe\n", 1, 4, ("n",), "'maybe' is not a valid !!bool"),
        ("n: !!timestamp abc\n", 1, 4, ("n",), "'abc' is not a valid !!timestamp"),
        ("n: [1, !!int '']\n", 1, 8, ("n", 1), "'' is not a valid !!int"),
        ("!!int 12abc: x\n", 1, 1, (), "'12abc' is not a valid !!int"),
    ],
)
def test_invalid_scalar_is_a_problem_at_the_scalar(
    text: str, line: int, column: int, path: tuple[str | int, ...], message: str,
) -> None:
    found = problem(text)
    assert (found.line, found.column, found.path) == (line, column, path)
    assert message in found.message


def test_integer_beyond_the_conversion_limit_is_a_problem() -> None:
    digits = "9" * 5000
    found = problem(f"kind: Container\nport: {digits}\n")
    assert (found.line, found.column, found.path) == (2, 7, ("port",))
    assert "too many digits" in found.message
    assert "quote it" in found.message
    assert len(found.message) < 300, "the message must not repeat 5000 digits"


def test_explicit_integer_beyond_the_conversion_limit_is_a_problem() -> None:
    found = problem("port: !!int " + "1" * 5000 + "\n")
    assert (found.line, found.column) == (1, 7)
    assert "too many digits" in found.message


@pytest.mark.parametrize(
    ("text", "line", "column", "code"),
    [
        ("a: \x01\n", 1, 4, "#x0001"),
        ("kind: Container\nname: w\x00b\n", 2, 8, "#x0000"),
        ("a: 1\r\nb: 2\r\nc: \x1b[0m\n", 3, 4, "#x001b"),
        ("a: 'é'\nb: x\x7f\n", 2, 5, "#x007f"),
        ("a: x\x85y\u2028z\x0c\n", 3, 2, "#x000c"),  # NEL and LS are YAML line breaks
        ("a: x\ufffe\n", 1, 5, "#xfffe"),
    ],
)
def test_control_character_is_a_problem_at_its_position(
    text: str, line: int, column: int, code: str,
) -> None:
    found = problem(text)
    assert (found.line, found.column) == (line, column)
    assert code in found.message
    assert "not allowed" in found.message


def test_control_character_message_shows_the_escape() -> None:
    assert problem("a: \x01\n").message.endswith('write "\\x01")')
    assert problem("a: \ufffe\n").message.endswith('write "\\ufffe")')


def test_tab_and_newline_are_not_control_characters() -> None:
    assert load_one('a: "x\ty"\nb: |\n  one\n  two\n') == {"a": "x\ty", "b": "one\ntwo\n"}


@pytest.mark.parametrize("opener", ["[", "{a: "])
def test_deep_flow_nesting_is_a_problem_not_a_recursion_error(opener: str) -> None:
    text = "kind: Container\nx: " + opener * 20_000 + "\n"
    found = problem(text)
    assert "nested too deeply" in found.message
    assert found.line == 2
    # The node that is one level too deep: x is level 1, so the (MAX_DEPTH)th opener.
    assert found.column == 4 + len(opener) * MAX_DEPTH


def test_deep_block_nesting_is_a_problem() -> None:
    text = "".join(" " * i + "- \n" for i in range(MAX_DEPTH + 5))
    found = problem(text)
    assert "nested too deeply" in found.message
    assert found.line == MAX_DEPTH + 2


def test_nesting_up_to_the_limit_is_accepted() -> None:
    value = load_one("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    assert depth == MAX_DEPTH


def test_recursion_error_anywhere_becomes_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    # With a tiny recursion limit even moderate nesting exhausts the stack: the backstop.
    text = "a:\n" + "".join(" " * (2 * i + 2) + f"k{i}:\n" for i in range(40)) + "  " * 41 + "x\n"
    limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(len(inspect.stack(0)) + 60)
        with pytest.raises(YamlProblem) as info:
            load_documents(text)
    finally:
        sys.setrecursionlimit(limit)
    assert "nested too deeply" in info.value.message
    assert info.value.line >= 1
    assert info.value.column >= 1


# 2. YAML 1.1 numbers the user meant as text.


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0022", "18"),
        ("1.10", "1.1"),
        ("0x1F", "31"),
        ("0x1F90", "8080"),
        ("1_000", "1000"),
        (".inf", "inf"),
        ("-.inf", "-inf"),
        (".nan", "nan"),
        ("1.0e+3", "1000.0"),
        ("0755", "493"),
        ("01750", "1000"),
        ("010", "8"),
        ("0b101", "5"),
        ("+5", "5"),
        ("-0", "0"),
        ("00", "0"),
        (".5", "0.5"),
        ("1.", "1.0"),
        ("+1.5", "1.5"),
    ],
)
def test_non_canonical_unquoted_number_is_a_problem(text: str, number: str) -> None:
    found = problem(f"env:\n  UMASK: {text}\n")
    assert (found.line, found.column, found.path) == (2, 10, ("env", "UMASK"))
    assert found.message == (
        f"unquoted {text} is read by YAML 1.1 as the number {number}; quote it (\"{text}\")")


def test_non_canonical_number_in_a_list() -> None:
    found = problem('command: ["chmod", 0755, "/srv"]\n')
    assert (found.line, found.column, found.path) == (1, 20, ("command", 1))
    assert "as the number 493" in found.message


def test_non_canonical_number_as_a_key() -> None:
    found = problem("ports:\n  010: x\n")
    assert (found.line, found.column) == (2, 3)
    assert "as the number 8" in found.message


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("5", 5),
        ("-5", -5),
        ("8080", 8080),
        ("99999999999999999999", 99999999999999999999),
        ("0.5", 0.5),
        ("1.5", 1.5),
        ("-2.25", -2.25),
        ("1.0", 1.0),
        ("3.14", 3.14),
        ("1e3", "1e3"),  # not a YAML 1.1 number at all: the resolver wants a dot
        ("'0022'", "0022"),
        ('"1.10"', "1.10"),
        ("!!int 0022", 18),  # explicitly asked for
        ("!!float 1.10", 1.1),
        ("!!int 0x1F", 31),
        ("!!str 0022", "0022"),
        ("true", True),  # booleans are the model's business, field by field
        ("no", False),
    ],
)
def test_canonical_or_quoted_or_tagged_values_are_accepted(text: str, value: object) -> None:
    loaded = load_one(f"v: {text}\n")["v"]
    assert loaded == value
    assert type(loaded) is type(value)


@pytest.mark.parametrize(("text", "number"), [("22:22", "1342"), ("1:30.5", "90.5")])
def test_base60_keeps_its_own_message(text: str, number: str) -> None:
    found = problem(f"v: {text}\n")
    assert found.message == (
        f"unquoted {text} was read by YAML 1.1 as the base-60 number {number}; "
        f'quote it ("{text}")')


# 3. Merge keys.


def test_local_key_overrides_a_merged_one() -> None:
    text = (
        "base: &base {A: '1', B: '2'}\n"
        "environment: {<<: *base, B: '3'}\n"
    )
    assert load_one(text)["environment"] == {"A": "1", "B": "3"}


def test_merge_matches_pyyaml_for_lists_and_repeated_merge_keys() -> None:
    texts = [
        "a: &a {X: '1', Y: '1'}\nb: &b {X: '2', Z: '2'}\nc: {<<: [*a, *b], Z: '3'}\n",
        "a: &a {X: '1', Y: '1'}\nb: &b {X: '2', Z: '2'}\nc: {<<: *a, <<: *b}\n",
        "a: &a {X: '1'}\nb: &b {<<: *a, X: '2', Y: '2'}\nc: {Y: '3', <<: *b}\n",
        "a: &a {X: '1'}\nc: {<<: {<<: *a, X: '0'}, Y: '3'}\n",
    ]
    for text in texts:
        loaded = load_one(text)
        expected = yaml.safe_load(text)
        assert loaded == expected
        assert list(loaded["c"]) == list(expected["c"]), "key order differs from PyYAML's"


def test_merged_mapping_used_again_keeps_its_locals() -> None:
    # b is flattened while c's merge is resolved, before b itself is built: its X
    # from a must still count as merged, its own X as local.
    text = "a: &a {X: '1'}\nc: {<<: &b {<<: *a, X: '2'}}\nd: *b\n"
    assert load_one(text) == yaml.safe_load(text)


def test_two_local_keys_remain_a_duplicate_with_a_merge() -> None:
    text = "base: &base {A: '1'}\nenv:\n  <<: *base\n  B: '2'\n  B: '3'\n"
    found = problem(text)
    assert (found.line, found.column, found.path) == (5, 3, ("env", "B"))
    assert "duplicate key 'B' (first at line 4)" in found.message


def test_local_key_that_also_comes_from_the_merge_is_a_duplicate_only_twice() -> None:
    text = "base: &base {B: '1'}\nenv: {<<: *base, B: '2', B: '3'}\n"
    found = problem(text)
    assert "duplicate key 'B' (first at line 2)" in found.message


def test_overridden_value_leaves_no_stale_position() -> None:
    text = "base: &base\n  B: {deep: '1'}\nenv:\n  <<: *base\n  B: '3'\n"
    (document,) = load_documents(text)
    assert document.value["env"] == {"B": "3"}
    assert document.positions.values[("env", "B")] == (5, 6)
    assert document.positions.keys[("env", "B")] == (5, 3)
    assert ("env", "B", "deep") not in document.positions.values


def test_merge_of_a_scalar_is_a_problem_at_the_scalar() -> None:
    found = problem("env: {<<: 5}\n")
    assert (found.line, found.column, found.path) == (1, 11, ("env",))
    assert found.message == (
        "merge key <<: expected a mapping or list of mappings for merging, but found scalar")
    found = problem("a: &a {X: '1'}\nenv: {<<: [*a, [1]]}\n")
    assert (found.line, found.column) == (2, 16)


def test_a_mapping_that_merges_itself_is_a_problem() -> None:
    found = problem("env: &e {X: '1', <<: *e}\n")
    assert "cannot merge itself" in found.message
    assert found.path == ("env",)


def test_merge_key_bomb_is_bounded() -> None:
    # Each level merges the previous one nine times: 9**10 pairs if flattened naively.
    aliases = ", ".join(["*m0"] * 9)
    lines = ["m0: &m0 {k: v}"]
    for level in range(1, 11):
        lines.append(f"m{level}: &m{level} {{<<: [{aliases.replace('m0', f'm{level - 1}')}]}}")
    found = problem("\n".join(lines) + "\n")
    assert "keys merged (a merge-key bomb?)" in found.message


def test_merge_budget_is_per_document() -> None:
    document = "a: &a {" + ", ".join(f"k{i}: v" for i in range(1000)) + "}\n"
    document += "".join(f"b{i}: {{<<: *a}}\n" for i in range(70))
    assert len(load_documents("---\n".join([document] * 3))) == 3


# Unchanged behaviour that the above must not break.


def test_plain_values_and_positions() -> None:
    (document,) = load_documents("kind: Container\nports:\n  - '80:80'\n  - 8080\n")
    assert document.value == {"kind": "Container", "ports": ["80:80", 8080]}
    assert document.positions.values[("ports", 1)] == (4, 5)
    assert document.positions.keys[("ports",)] == (2, 1)


def test_duplicate_key_without_merge() -> None:
    found = problem("a: '1'\nb: '2'\na: '3'\n")
    assert (found.line, found.column) == (3, 1)
    assert "duplicate key 'a' (first at line 1)" in found.message


def test_syntax_error_has_a_position() -> None:
    found = problem("a: [1, 2\nb: 3\n")
    assert found.message.startswith("YAML syntax:")
    assert found.line >= 1
