"""What a DaemonConfig owns and owes, kept in the state dir between passes.

- ``owned_keys``: like ``kubectl apply``'s last-applied record, keys the manifest no
  longer names are deleted from the file; keys nobody owned are never touched.
- ``pending``: a dockerd step (reload or restart) owed to a given dockerd (pid, start
  ticks). It is recorded *before* the file is written and cleared only once the step
  is done, so a pass killed in between, or a restart nobody could do, is completed
  by a later pass for as long as that dockerd runs.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agent.fsutil.atomic import write_if_changed
from agent.model import DaemonConfig
from agent.state import StateDir

Step = Literal["none", "reload", "restart"]
_STRENGTH = {"none": 0, "reload": 1, "restart": 2}


def stronger(left: Step, right: Step) -> Step:
    """A restart also applies what a reload would."""
    return left if _STRENGTH[left] >= _STRENGTH[right] else right


@dataclass(frozen=True)
class Pending:
    step: Step
    dockerd: tuple[int, int]  # (pid, start ticks)


@dataclass(frozen=True)
class Ownership:
    owned_keys: tuple[str, ...] = ()
    pending: Pending | None = None


def _record_path(state: StateDir, doc: DaemonConfig) -> Path:
    return state.root / "resources" / "DaemonConfig" / (
        urllib.parse.quote(doc.path, safe="") + ".json")


def _pending(raw: Any) -> Pending | None:
    if not isinstance(raw, dict) or raw.get("step") not in ("reload", "restart"):
        return None
    ident = raw.get("dockerd")
    if not (isinstance(ident, list) and len(ident) == 2
            and all(isinstance(n, int) for n in ident)):
        return None
    return Pending(raw["step"], (ident[0], ident[1]))


def read_ownership(state: StateDir, doc: DaemonConfig) -> Ownership:
    """The record, or an empty one when it is missing or damaged (never an error)."""
    try:
        data = json.loads(_record_path(state, doc).read_text())
    except (OSError, ValueError):
        return Ownership()
    if not isinstance(data, dict):
        return Ownership()
    keys = data.get("owned_keys")
    return Ownership(
        owned_keys=tuple(k for k in keys if isinstance(k, str)) if isinstance(keys, list) else (),
        pending=_pending(data.get("pending")),
    )


def write_ownership(state: StateDir, doc: DaemonConfig, ownership: Ownership) -> None:
    pending = ownership.pending
    content = json.dumps({
        "path": doc.path,
        "owned_keys": list(ownership.owned_keys),
        "pending": {"step": pending.step, "dockerd": list(pending.dockerd)} if pending else None,
    }, indent=2).encode()
    write_if_changed(_record_path(state, doc), content, mode=0o600, dir_mode=0o700)
