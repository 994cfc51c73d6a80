"""``-e KEY=VALUE`` and ``--label k=v``: a mapping, or a list of ``KEY=VALUE`` strings."""

from __future__ import annotations

import re

from agent.model.syntax.errors import SyntaxProblem

_ENV_KEY = re.compile(r"^[^=\0]+$")
_MAX_ITEMS = 10_000


def _scalar_to_text(key: str, value: object, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise SyntaxProblem(
            f"{what} {key!r}: YAML read an unquoted yes/no/true/false/on/off as a boolean; "
            f'quote it (e.g. "{str(value).lower()}") so the container sees the text you wrote'
        )
    if isinstance(value, int | float | str):
        text = str(value)
        if "\0" in text:
            raise SyntaxProblem(f"{what} {key!r} holds a NUL byte")
        return text
    raise SyntaxProblem(f"{what} {key!r} must be a string or a number")


def parse_key_values(value: object, what: str) -> dict[str, str | None]:
    """Normalize a mapping or a ``KEY=VALUE`` list; ``KEY`` alone maps to ``None``."""
    if isinstance(value, dict):
        items = [(key, raw, (key,)) for key, raw in value.items()]
    elif isinstance(value, list):
        items = []
        for index, entry in enumerate(value):
            if not isinstance(entry, str):
                raise SyntaxProblem(f"each {what} list item must be a \"KEY=VALUE\" string",
                                    at=(index,))
            key, sep, text = entry.partition("=")
            items.append((key, text if sep else None, (index,)))
    else:
        raise SyntaxProblem(f"{what} must be a mapping or a list of KEY=VALUE strings")
    if len(items) > _MAX_ITEMS:
        raise SyntaxProblem(f"{what} has more than {_MAX_ITEMS} entries")
    result: dict[str, str | None] = {}
    for key, raw, at in items:
        if not isinstance(key, str) or not _ENV_KEY.match(key):
            raise SyntaxProblem(f"{what} name {key!r} must be non-empty text without '='", at=at)
        if key in result:
            raise SyntaxProblem(f"{what} {key!r} is given twice", at=at)
        try:
            result[key] = _scalar_to_text(key, raw, what)
        except SyntaxProblem as exc:
            raise SyntaxProblem(str(exc), at=at) from None
    return result
