"""The DaemonConfig resource: Docker's daemon.json, owned keys set, the rest preserved."""

from __future__ import annotations

import os
from pathlib import Path

from agent.fsutil.atomic import atomic_write
from agent.fsutil.backups import save_backup
from agent.model import DaemonConfig
from agent.reconcile.actions import Action, Applied, Options
from agent.reconcile.handler import HostContext
from agent.resources.daemon_config import dockerd as dockerd_control
from agent.resources.daemon_config.observe import ObservedDaemonConfig, observe
from agent.resources.daemon_config.ownership import Ownership, write_ownership
from agent.resources.daemon_config.plan import DaemonConfigPayload, plan

FILE_MODE = 0o644


class DaemonConfigHandler:
    kind = "DaemonConfig"

    def observe(self, doc: DaemonConfig, ctx: HostContext) -> ObservedDaemonConfig:
        return observe(doc, ctx)

    def plan(self, doc: DaemonConfig, observed: ObservedDaemonConfig, options: Options) -> Action:
        return plan(doc, observed, options)

    def apply(self, doc: DaemonConfig, action: Action, ctx: HostContext) -> Applied:
        payload: DaemonConfigPayload = action.payload
        details: dict[str, str] = {}
        if payload.content is not None:
            # Write through a symlink, to the file dockerd really reads.
            target = Path(os.path.realpath(doc.path))
            previous = _read_or_none(target)
            if previous:
                details["backup"] = str(save_backup(ctx.state.backups, Path(doc.path), previous))
            atomic_write(target, payload.content, mode=FILE_MODE)
        error = _dockerd_followup(payload, details)
        owed = payload.dockerd.identity if error and payload.dockerd else None
        write_ownership(ctx.state, doc, Ownership(payload.owned_keys, owed))
        if error is None:
            return Applied(details)
        written = payload.content is not None
        done = "is written" if written else "is up to date"
        return Applied(details, error=f"{doc.path} {done}, but {error}", changed=written)


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _dockerd_followup(payload: DaemonConfigPayload, details: dict[str, str]) -> str | None:
    """Reload or restart dockerd as planned; the reason when a needed restart did not happen."""
    dockerd = payload.dockerd
    if dockerd is None:
        details["dockerd"] = "not running; the settings apply when it starts"
        return None
    if payload.dockerd_step == "reload":
        details["dockerd"] = dockerd_control.reload(dockerd)
    elif payload.dockerd_step == "restart":
        try:
            done = dockerd_control.restart(dockerd)
        except dockerd_control.RestartFailed as exc:
            return f"restarting dockerd pid {dockerd.pid} failed: {exc} (the next pass retries)"
        if done is None:
            return (f"dockerd pid {dockerd.pid} needs a restart for these keys and no "
                    "service manager runs it: restart it by hand (the next pass retries)")
        details["dockerd"] = done
    return None


__all__ = ["DaemonConfigHandler"]
