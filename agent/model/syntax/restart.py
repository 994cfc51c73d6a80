"""Docker's restart policies: ``no | always | on-failure[:N] | unless-stopped``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agent.model.syntax.errors import SyntaxProblem

PolicyName = Literal["no", "always", "on-failure", "unless-stopped"]
_MAX_RETRIES = 1_000_000


@dataclass(frozen=True)
class RestartPolicy:
    """``max_retries`` only for ``on-failure``; ``None`` there means unlimited."""

    name: PolicyName
    max_retries: int | None = None

    def __str__(self) -> str:
        if self.max_retries is not None:
            return f"{self.name}:{self.max_retries}"
        return self.name


def parse_restart(value: object) -> RestartPolicy:
    """Parse a restart policy. YAML 1.1 reads an unquoted ``no`` as false: accept it as "no"."""
    if value is False:
        return RestartPolicy("no")
    if not isinstance(value, str):
        raise SyntaxProblem('restart must be "no", always, on-failure[:N] or unless-stopped')
    name, sep, count = value.partition(":")
    if name in ("no", "always", "unless-stopped") and not sep:
        return RestartPolicy(name)  # type: ignore[arg-type]
    if name == "on-failure":
        if not sep:
            return RestartPolicy("on-failure")
        if count.isascii() and count.isdigit() and int(count) <= _MAX_RETRIES:
            return RestartPolicy("on-failure", int(count))
        raise SyntaxProblem(f"on-failure:{count}: the retry count must be 0 to {_MAX_RETRIES}")
    if sep:
        raise SyntaxProblem(f"restart {value!r}: only on-failure takes a :N retry count")
    raise SyntaxProblem(f'restart {value!r} is not "no", always, on-failure[:N] or unless-stopped')
