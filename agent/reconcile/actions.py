"""Plans are data: what a resource would do, computed without touching the host."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Op = Literal["none", "create", "update", "replace", "recreate", "delete", "reload", "restart"]


@dataclass(frozen=True)
class Options:
    """How a pass runs: ``check`` plans only; ``force`` allows replacing unparsable files."""

    check: bool = False
    diff: bool = False
    force: bool = False


@dataclass(frozen=True)
class Applied:
    """What applying did. ``error``: a step failed; ``changed``: the host was modified anyway."""

    details: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    changed: bool = True


@dataclass(frozen=True)
class Action:
    """One resource's plan. ``refused``: the plan cannot proceed safely. ``bookkeeping``:
    the host is right, but pyprov's own record of it must be updated (not a change)."""

    op: Op
    summary: str
    changes: tuple[str, ...] = ()
    diff: str | None = None
    refused: str | None = None
    bookkeeping: bool = False
    payload: Any = field(default=None, compare=False)

    @property
    def changes_host(self) -> bool:
        return self.op != "none" and self.refused is None
