"""``command:`` / ``entrypoint:``: a list of arguments, or a string split as a shell would."""

from __future__ import annotations

import shlex

from agent.model.syntax.errors import SyntaxProblem

_MAX_ARGS = 4096


def parse_command(value: object) -> tuple[str, ...]:
    """Compose splits a string command with shell quoting rules; a list is taken as is."""
    if isinstance(value, str):
        try:
            args = shlex.split(value)
        except ValueError as exc:
            raise SyntaxProblem(f"command {value!r}: {exc}") from None
    elif isinstance(value, list):
        args = []
        for arg in value:
            if isinstance(arg, bool) or not isinstance(arg, str | int | float):
                raise SyntaxProblem("each command argument must be a string")
            args.append(str(arg))
    else:
        raise SyntaxProblem("command must be a string or a list of strings")
    if len(args) > _MAX_ARGS or any("\0" in a for a in args):
        raise SyntaxProblem(f"command has more than {_MAX_ARGS} arguments or a NUL byte")
    return tuple(args)
