"""Executing a DaemonConfig plan: record, back up, write, then reload or restart dockerd.

Order matters for crash safety: the record (keys owned, dockerd step owed) is written
before the file, so a pass killed anywhere leaves enough for the next pass to finish.
"""

from __future__ import annotations

import os
from pathlib import Path

from agent.errors import RestartFailed
from agent.fsutil.atomic import atomic_write
from agent.fsutil.backups import save_backup
from agent.model import DaemonConfig
from agent.reconcile.actions import Action, Applied
from agent.reconcile.handler import HostContext
from agent.resources.daemon_config import dockerd as dockerd_control
from agent.resources.daemon_config.ownership import Ownership, Pending, write_ownership
from agent.resources.daemon_config.plan import DaemonConfigPayload

FILE_MODE = 0o644


def apply(doc: DaemonConfig, action: Action, ctx: HostContext) -> Applied:
    payload: DaemonConfigPayload = action.payload
    identity = payload.dockerd.identity if payload.dockerd else None
    owed = (Pending(payload.dockerd_step, identity)
            if identity and payload.dockerd_step != "none" else None)
    details: dict[str, str] = {}
    written = payload.content is not None
    if payload.content is not None:
        both = tuple(dict.fromkeys(payload.owned_keys + payload.previously_owned))
        write_ownership(ctx.state, doc, Ownership(both, owed))
        _write(doc, payload.content, ctx, details)
    error = _dockerd_followup(doc.path, payload, details)
    still_owed = Pending("restart", identity) if error and identity else None
    write_ownership(ctx.state, doc, Ownership(payload.owned_keys, still_owed))
    changed = written or (error is None and payload.dockerd_step != "none")
    if error is None:
        return Applied(details, changed=changed)
    done = "is written" if written else "is up to date"
    return Applied(details, error=f"{doc.path} {done}, but {error}", changed=changed)


def _write(doc: DaemonConfig, content: bytes, ctx: HostContext, details: dict[str, str]) -> None:
    # Write through a symlink, to the file dockerd really reads; never loosen its mode.
    target = Path(os.path.realpath(doc.path))
    try:
        previous: bytes | None = target.read_bytes()
        mode = FILE_MODE & target.stat().st_mode
    except FileNotFoundError:
        previous, mode = None, FILE_MODE
    if previous:
        details["backup"] = str(save_backup(ctx.state.backups, Path(doc.path), previous))
    atomic_write(target, content, mode=mode)


def _dockerd_followup(path: str, payload: DaemonConfigPayload,
                      details: dict[str, str]) -> str | None:
    """Reload or restart dockerd as planned; the reason when a needed restart did not happen."""
    dockerd = payload.dockerd
    if dockerd is None:
        details["dockerd"] = "not running; the settings apply when it starts"
        return None
    if payload.dockerd_step == "reload":
        details["dockerd"] = dockerd_control.reload(dockerd)
    elif payload.dockerd_step == "restart":
        try:
            done = dockerd_control.restart(dockerd, path)
        except RestartFailed as exc:
            return f"restarting dockerd pid {dockerd.pid} failed: {exc} (the next pass retries)"
        if done is None:
            return (f"dockerd pid {dockerd.pid} needs a restart for these keys and no "
                    "service manager runs it: restart it by hand (the next pass retries)")
        details["dockerd"] = done
    return None

