"""Which daemon.json keys a DaemonConfig set last time, so dropping a key removes it.

Like ``kubectl apply``'s last-applied record: keys the manifest no longer names are
deleted from the file; keys nobody owned are never touched. It also remembers a
dockerd that still owes a restart (by pid and start ticks), so the next pass
retries until that dockerd is gone.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from agent.fsutil.atomic import write_if_changed
from agent.model import DaemonConfig
from agent.state import StateDir


@dataclass(frozen=True)
class Ownership:
    owned_keys: tuple[str, ...] = ()
    restart_owed_by: tuple[int, int] | None = None  # dockerd (pid, start ticks)


def _record_path(state: StateDir, doc: DaemonConfig) -> Path:
    return state.root / "resources" / "DaemonConfig" / (
        urllib.parse.quote(doc.path, safe="") + ".json")


def read_ownership(state: StateDir, doc: DaemonConfig) -> Ownership:
    try:
        data = json.loads(_record_path(state, doc).read_text())
    except (FileNotFoundError, ValueError):
        return Ownership()
    keys = data.get("owned_keys", [])
    owed = data.get("restart_owed_by")
    valid = (isinstance(owed, list) and len(owed) == 2
             and all(isinstance(n, int) for n in owed))
    return Ownership(
        owned_keys=tuple(k for k in keys if isinstance(k, str)),
        restart_owed_by=(owed[0], owed[1]) if valid else None,
    )


def write_ownership(state: StateDir, doc: DaemonConfig, ownership: Ownership) -> None:
    content = json.dumps({"path": doc.path, "owned_keys": list(ownership.owned_keys),
                          "restart_owed_by": ownership.restart_owed_by}, indent=2).encode()
    write_if_changed(_record_path(state, doc), content, mode=0o600, dir_mode=0o700)
