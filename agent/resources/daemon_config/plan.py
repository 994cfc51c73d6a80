"""The pure plan for a DaemonConfig: new file content, what changed, and what dockerd needs."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

from agent.errors import UnparsableFile
from agent.model import DaemonConfig
from agent.model.daemon_settings import RELOADABLE_KEYS
from agent.reconcile.actions import Action, Op, Options
from agent.resources.daemon_config.dockerd import Dockerd
from agent.resources.daemon_config.observe import ObservedDaemonConfig
from agent.resources.daemon_config.ownership import Step, stronger

# user:password@ in a URL; greedy up to the last '@' so passwords with '@' or '/' are hidden.
_URL_CREDENTIALS = re.compile(r"(://[^:/@\s\"]+:)[^\s\"]*@")


@dataclass(frozen=True)
class DaemonConfigPayload:
    """What apply needs: the bytes to write, the keys owned before and now, the dockerd step."""

    content: bytes | None  # None: the file is right
    owned_keys: tuple[str, ...]
    previously_owned: tuple[str, ...]
    dockerd_step: Step
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


def needed_step(dockerd: Dockerd | None, changed: list[str], replacing: bool) -> Step:
    """SIGHUP when every changed key is one dockerd reloads, else a restart."""
    if dockerd is None or not (changed or replacing):
        return "none"
    if replacing or any(key not in RELOADABLE_KEYS for key in changed):
        return "restart"
    return "reload"


def owed_step(observed: ObservedDaemonConfig) -> Step:
    """A step an earlier pass recorded for the dockerd that still runs."""
    pending, dockerd = observed.ownership.pending, observed.dockerd
    if pending is None or dockerd is None or dockerd.identity != pending.dockerd:
        return "none"
    return pending.step


def plan(doc: DaemonConfig, observed: ObservedDaemonConfig, options: Options) -> Action:
    if observed.parse_error and not options.force:
        return Action("none", "unparsable", refused=str(
            UnparsableFile(observed.path, observed.parse_error)))
    replacing = observed.parse_error is not None
    current = observed.parsed if observed.parsed is not None else {}
    previously = observed.ownership.owned_keys
    merged, changed = merge(current, doc, previously)
    owned = tuple(doc.settings)
    step = stronger(needed_step(observed.dockerd, changed, replacing), owed_step(observed))

    def payload(content: bytes | None) -> DaemonConfigPayload:
        return DaemonConfigPayload(content, owned, previously, step, observed.dockerd)

    if not changed and not replacing and observed.raw is not None:
        return _file_is_right(observed, step, owned, payload(None))
    content = render(merged)
    op: Op = "create" if observed.raw is None else ("replace" if replacing else "update")
    verb = {"create": "create", "update": "update", "replace": "replace unparsable"}[op]
    summary = f"{verb} {observed.path}" + (f" ({', '.join(changed)})" if changed else "")
    if step != "none":
        summary += f"; {step} dockerd"
    return Action(op, summary, changes=tuple(changed),
                  diff=(unified_diff(observed.path, _comparable(observed), content)
                        if options.diff else None),
                  payload=payload(content))


def _comparable(observed: ObservedDaemonConfig) -> bytes | None:
    if observed.parsed is not None and observed.raw is not None and observed.raw.strip():
        return render(observed.parsed)
    return observed.raw


def _file_is_right(observed: ObservedDaemonConfig, step: Step, owned: tuple[str, ...],
                   payload: DaemonConfigPayload) -> Action:
    """No write needed: maybe a dockerd step still owed, maybe only the record to settle."""
    if step != "none" and observed.dockerd is not None:
        return Action(step, f"{step} dockerd pid {observed.dockerd.pid} to apply "
                      f"{observed.path} (owed by an earlier pass)", payload=payload)
    stale_record = (observed.ownership.owned_keys != owned
                    or observed.ownership.pending is not None)
    return Action("none", f"{observed.path} is up to date", bookkeeping=stale_record,
                  payload=payload)
