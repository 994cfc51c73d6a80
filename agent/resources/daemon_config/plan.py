"""The pure plan for a DaemonConfig: new file content, what changed, and what dockerd needs."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from agent.errors import UnparsableFile
from agent.model import DaemonConfig
from agent.model.daemon_settings import RELOADABLE_KEYS
from agent.reconcile.actions import Action, Op, Options
from agent.resources.daemon_config.dockerd import Dockerd
from agent.resources.daemon_config.observe import ObservedDaemonConfig

DockerdStep = Literal["none", "reload", "restart"]
_URL_CREDENTIALS = re.compile(r"(://[^:/@\s\"]+:)[^@/\s\"]+@")


@dataclass(frozen=True)
class DaemonConfigPayload:
    """What apply needs: the bytes to write, the keys now owned, and the dockerd step."""

    content: bytes | None  # None: the file is right, only dockerd needs a restart
    owned_keys: tuple[str, ...]
    dockerd_step: DockerdStep
    dockerd: Dockerd | None


def same_json(left: Any, right: Any) -> bool:
    """JSON equality: ``1`` is not ``true``, mapping order does not matter."""
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


def render(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def merge(current: dict[str, Any], doc: DaemonConfig,
          previously_owned: tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
    """Set owned keys exactly, drop keys we owned before and no longer name, keep the rest.

    Existing keys keep their position; new keys follow, in manifest order.
    """
    dropped = [k for k in previously_owned if k not in doc.settings and k in current]
    merged = {k: v for k, v in current.items() if k not in dropped}
    changed = []
    for key, value in doc.settings.items():
        if key not in merged or not same_json(merged[key], value):
            changed.append(key)
        merged[key] = value
    return merged, changed + dropped


def mask_credentials(text: str) -> str:
    """Hide passwords in URLs (``proxies`` may hold them) before a diff is shown."""
    return _URL_CREDENTIALS.sub(r"\1*****@", text)


def unified_diff(path: str, old: bytes | None, new: bytes) -> str:
    """A diff of the settings, not of formatting: a parsable old file is shown re-rendered,
    so a hand-edited one-line file still shows which key drifted."""
    old_lines = (old or b"").decode("utf-8", "replace").splitlines(keepends=True)
    new_lines = new.decode("utf-8").splitlines(keepends=True)
    diff = difflib.unified_diff(old_lines, new_lines,
                                fromfile=path if old is not None else "/dev/null", tofile=path)
    return mask_credentials("".join(diff))


def dockerd_step(dockerd: Dockerd | None, changed: list[str], replacing: bool) -> DockerdStep:
    """SIGHUP when every changed key is one dockerd reloads, else a restart."""
    if dockerd is None or not (changed or replacing):
        return "none"
    if replacing or any(key not in RELOADABLE_KEYS for key in changed):
        return "restart"
    return "reload"


def plan(doc: DaemonConfig, observed: ObservedDaemonConfig, options: Options) -> Action:
    if observed.parse_error and not options.force:
        return Action("none", "unparsable", refused=str(
            UnparsableFile(observed.path, observed.parse_error)))
    replacing = observed.parse_error is not None
    current = observed.parsed if observed.parsed is not None else {}
    merged, changed = merge(current, doc, observed.ownership.owned_keys)
    owned = tuple(doc.settings)
    step = dockerd_step(observed.dockerd, changed, replacing)
    if not changed and not replacing and observed.raw is not None:
        return _pending_restart_or_nothing(observed, owned)
    content = render(merged)
    op: Op = "create" if observed.raw is None else ("replace" if replacing else "update")
    verb = {"create": "create", "update": "update", "replace": "replace unparsable"}[op]
    summary = f"{verb} {observed.path}" + (f" ({', '.join(changed)})" if changed else "")
    if step != "none":
        summary += f"; {step} dockerd"
    return Action(op, summary, changes=tuple(changed),
                  diff=(unified_diff(observed.path, _comparable(observed), content)
                        if options.diff else None),
                  payload=DaemonConfigPayload(content, owned, step, observed.dockerd))


def _comparable(observed: ObservedDaemonConfig) -> bytes | None:
    if observed.parsed is not None and observed.raw is not None and observed.raw.strip():
        return render(observed.parsed)
    return observed.raw


def _pending_restart_or_nothing(observed: ObservedDaemonConfig, owned: tuple[str, ...]) -> Action:
    """The file is right; a restart is still owed while the dockerd that missed it runs."""
    owed = observed.ownership.restart_owed_by
    dockerd = observed.dockerd
    if owed is not None and dockerd is not None and dockerd.identity == owed:
        return Action("restart", f"restart dockerd pid {dockerd.pid} to apply {observed.path} "
                      "(owed by an earlier pass)",
                      payload=DaemonConfigPayload(None, owned, "restart", dockerd))
    return Action("none", f"{observed.path} is up to date",
                  payload=DaemonConfigPayload(None, owned, "none", dockerd))
