"""The error every docker-syntax parser raises: pydantic reports it as a field error."""

from __future__ import annotations


class SyntaxProblem(ValueError):
    """A value that does not follow its docker syntax; the message says how to fix it.

    ``at`` is a field path below the one pydantic reports (e.g. the daemon.json key
    inside ``settings``), so error messages can point at the exact line.
    """

    def __init__(self, message: str, at: tuple[str | int, ...] = (),
                 at_key: bool = False) -> None:
        super().__init__(message)
        self.at = at
        self.at_key = at_key  # the fault is the key itself (an unknown name), not its value
