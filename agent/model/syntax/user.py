"""``user:`` / ``-u``: ``name|uid[:group|gid]``."""

from __future__ import annotations

import re

from agent.model.syntax.errors import SyntaxProblem

_PART = re.compile(r"^(?:[0-9]{1,10}|[a-z_][a-z0-9_.-]{0,31}\$?)\Z", re.IGNORECASE | re.ASCII)


def parse_user(value: object) -> str:
    """Check the syntax; names are resolved later from the image's /etc/passwd."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise SyntaxProblem('user must be "name", "uid" or "uid:gid" as a string')
    text = str(value)
    parts = text.split(":")
    if len(parts) > 2 or not all(_PART.match(p) for p in parts):
        raise SyntaxProblem(f"user {text!r} is not name|uid[:group|gid]")
    for part in parts:
        if part.isdigit() and int(part) > 2**32 - 2:
            raise SyntaxProblem(f"id {part} is out of range")
    return text
