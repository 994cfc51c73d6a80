"""``environment:``/``labels:``, ``command:``/``entrypoint:`` and ``user:``."""

from __future__ import annotations

import re

import pytest

from agent.model.syntax.command import parse_command
from agent.model.syntax.errors import SyntaxProblem
from agent.model.syntax.keyvalues import parse_key_values
from agent.model.syntax.user import parse_user


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"A": "1", "B": 2, "C": 1.5, "D": None}, {"A": "1", "B": "2", "C": "1.5", "D": None}),
        (["A=1", "B=x=y", "C=", "D"], {"A": "1", "B": "x=y", "C": "", "D": None}),
        (["PATH=/usr/bin:/bin"], {"PATH": "/usr/bin:/bin"}),
        ({}, {}),
        ([], {}),
    ],
)
def test_key_values(value: object, expected: dict[str, str | None]) -> None:
    assert parse_key_values(value, "environment variable") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"DEBUG": True}, 'quote it (e.g. "true")'),
        ({"ENABLED": False}, 'quote it (e.g. "false")'),
        (["A=1", "A=2"], "'A' is given twice"),
        (["=x"], "must be non-empty text"),
        ([5], "KEY=VALUE\" string"),
        ({"A": [1]}, "must be a string or a number"),
        ({"A": "x\0y"}, "NUL byte"),
        ({1: "x"}, "name 1 must be"),
        ("A=1", "must be a mapping or a list"),
    ],
)
def test_key_values_rejected(value: object, message: str) -> None:
    with pytest.raises(SyntaxProblem, match=re.escape(message)):
        parse_key_values(value, "environment variable")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('sh -c "echo hi"', ("sh", "-c", "echo hi")),
        ("nginx -g 'daemon off;'", ("nginx", "-g", "daemon off;")),
        (r"echo a\ b", ("echo", "a b")),
        ("echo $HOME # not a comment", ("echo", "$HOME", "#", "not", "a", "comment")),
        (["sh", "-c", "echo hi && exit 1"], ("sh", "-c", "echo hi && exit 1")),
        (["sleep", 10], ("sleep", "10")),
        ("", ()),
    ],
)
def test_command(value: object, expected: tuple[str, ...]) -> None:
    assert parse_command(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('sh -c "echo hi', "No closing quotation"),
        ("echo 'x", "No closing quotation"),
        (["sleep", True], "must be a string"),
        (["a", None], "must be a string"),
        ({"cmd": "x"}, "string or a list"),
        (["a\0b"], "NUL byte"),
    ],
)
def test_command_rejected(value: object, message: str) -> None:
    with pytest.raises(SyntaxProblem, match=re.escape(message)):
        parse_command(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1000", "1000"),
        (1000, "1000"),
        ("1000:1000", "1000:1000"),
        ("www-data", "www-data"),
        ("www-data:www-data", "www-data:www-data"),
        ("root:0", "root:0"),
        ("_svc$", "_svc$"),
    ],
)
def test_user(value: object, expected: str) -> None:
    assert parse_user(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a:b:c", "is not name|uid[:group|gid]"),
        ("", "is not name|uid[:group|gid]"),
        (":1000", "is not name|uid[:group|gid]"),
        ("1000:", "is not name|uid[:group|gid]"),
        ("www data", "is not name|uid[:group|gid]"),
        ("www-data\n", "is not name|uid[:group|gid]"),
        ("-x", "is not name|uid[:group|gid]"),
        ("4294967295", "out of range"),
        (True, "must be"),
        (1.5, "must be"),
    ],
)
def test_user_rejected(value: object, message: str) -> None:
    with pytest.raises(SyntaxProblem, match=re.escape(message)):
        parse_user(value)
