"""What is there now: the file's bytes, its JSON, the keys we owned, the dockerd reading it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.model import DaemonConfig
from agent.reconcile.handler import HostContext
from agent.resources.daemon_config.dockerd import Dockerd, find_dockerd
from agent.resources.daemon_config.ownership import Ownership, read_ownership

MAX_FILE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ObservedDaemonConfig:
    path: str
    raw: bytes | None  # None: the file does not exist
    parsed: dict[str, Any] | None = None
    parse_error: str | None = None
    dockerd: Dockerd | None = None
    ownership: Ownership = field(default_factory=Ownership)


def parse_document(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The file as an ordered dict, or the reason it is not a JSON object."""
    if len(raw) > MAX_FILE_BYTES:
        return None, f"larger than {MAX_FILE_BYTES} bytes"
    if not raw.strip():
        return {}, None  # an empty file is what `touch` leaves: treat as {}
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8: {exc.reason} at byte {exc.start}"
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if not isinstance(parsed, dict):
        return None, f"the top level is a JSON {type(parsed).__name__}, not an object"
    return parsed, None


def observe(doc: DaemonConfig, ctx: HostContext) -> ObservedDaemonConfig:
    path = Path(doc.path)
    try:
        raw: bytes | None = path.read_bytes()
    except FileNotFoundError:
        raw = None
    parsed, error = parse_document(raw) if raw is not None else (None, None)
    return ObservedDaemonConfig(
        path=doc.path, raw=raw, parsed=parsed, parse_error=error,
        dockerd=find_dockerd(doc.path), ownership=read_ownership(ctx.state, doc),
    )
