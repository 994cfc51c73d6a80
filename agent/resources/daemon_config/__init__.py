"""The DaemonConfig resource: Docker's daemon.json, owned keys set, the rest preserved."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from agent.errors import ResourceError
from agent.fsutil.atomic import atomic_write
from agent.fsutil.backups import save_backup
from agent.model import DaemonConfig
from agent.reconcile.actions import Action, Options
from agent.reconcile.handler import HostContext
from agent.resources.daemon_config import dockerd as dockerd_control
from agent.resources.daemon_config.observe import ObservedDaemonConfig, observe
from agent.resources.daemon_config.ownership import Ownership, read_ownership, write_ownership
from agent.resources.daemon_config.plan import DaemonConfigPayload, plan

FILE_MODE = 0o644


class DaemonConfigHandler:
    kind = "DaemonConfig"

    def observe(self, doc: DaemonConfig, ctx: HostContext) -> ObservedDaemonConfig:
        return observe(doc, ctx)

    def plan(self, doc: DaemonConfig, observed: ObservedDaemonConfig, options: Options) -> Action:
        return plan(doc, observed, options)

    def apply(self, doc: DaemonConfig, action: Action, ctx: HostContext) -> dict[str, str]:
        payload: DaemonConfigPayload = action.payload
        details: dict[str, str] = {}
        path = Path(doc.path)
        if payload.content is not None:
            previous = _read_or_none(path)
            if previous:
                details["backup"] = str(save_backup(ctx.state.backups, path, previous))
            atomic_write(path, payload.content, mode=FILE_MODE)
        pending = _dockerd_followup(payload, details)
        write_ownership(ctx.state, doc, Ownership(payload.owned_keys, pending))
        if pending is not None:
            raise ResourceError(
                f"{doc.path} is written, but {details['dockerd']}"
            )
        return details


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _dockerd_followup(payload: DaemonConfigPayload, details: dict[str, str]) -> float | None:
    """Reload or restart dockerd; the time a restart became owed when it could not be done."""
    dockerd = payload.dockerd
    if dockerd is None:
        details["dockerd"] = "not running; the settings apply when it starts"
        return None
    if payload.dockerd_step == "reload":
        details["dockerd"] = dockerd_control.reload(dockerd)
    elif payload.dockerd_step == "restart":
        try:
            done = dockerd_control.restart(dockerd)
        except (subprocess.SubprocessError, OSError) as exc:
            done = None
            details["dockerd"] = f"restart of dockerd pid {dockerd.pid} failed: {exc}"
        if done is None:
            details.setdefault(
                "dockerd", f"dockerd pid {dockerd.pid} needs a restart for these keys and no "
                "service manager runs it: restart it by hand (the next pass retries)")
            return time.time()
        details["dockerd"] = done
    return None


__all__ = ["DaemonConfigHandler", "read_ownership"]
