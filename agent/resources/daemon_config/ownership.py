"""Which daemon.json keys a DaemonConfig set last time, so dropping a key removes it.

Like ``kubectl apply``'s last-applied record: keys the manifest no longer names are
deleted from the file; keys nobody owned are never touched. Also remembers a
dockerd restart that could not be done, so the next pass retries it.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from agent.fsutil.atomic import atomic_write
from agent.model import DaemonConfig
from agent.state import StateDir


@dataclass(frozen=True)
class Ownership:
    owned_keys: tuple[str, ...] = ()
    restart_pending_since: float | None = None


def _record_path(state: StateDir, doc: DaemonConfig) -> Path:
    return state.root / "resources" / "DaemonConfig" / (
        urllib.parse.quote(doc.path, safe="") + ".json")


def read_ownership(state: StateDir, doc: DaemonConfig) -> Ownership:
    try:
        data = json.loads(_record_path(state, doc).read_text())
    except (FileNotFoundError, ValueError):
        return Ownership()
    keys = data.get("owned_keys", [])
    since = data.get("restart_pending_since")
    return Ownership(
        owned_keys=tuple(k for k in keys if isinstance(k, str)),
        restart_pending_since=float(since) if isinstance(since, int | float) else None,
    )


def write_ownership(state: StateDir, doc: DaemonConfig, ownership: Ownership) -> None:
    record = {"path": doc.path, "owned_keys": list(ownership.owned_keys),
              "restart_pending_since": ownership.restart_pending_since}
    atomic_write(_record_path(state, doc), json.dumps(record, indent=2).encode(), mode=0o600,
                 dir_mode=0o700)
