"""A Container's plan (pure): create, start, stop, recreate, delete, or nothing.

Recreation is decided by the spec hash stored with the container (the image's digest
included), never by inspecting the running container. What changed is reported by
field name; environment values never appear (keys only: they hold passwords).
"""

from __future__ import annotations

from dataclasses import asdict

from agent.model import Container
from agent.reconcile.actions import Action, Options
from agent.resources.container.observe import ObservedContainer


def _env(entries: object) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in entries if isinstance(entries, list | tuple) else ():
        key, _, value = str(entry).partition("=")
        found[key] = value
    return found


def _changed_fields(old: dict[str, object], new: dict[str, object]) -> tuple[str, ...]:
    changes = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key) or key == "version":
            continue
        if key == "env":
            before, after = _env(old.get("env")), _env(new.get("env"))
            keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            changes.append(f"environment: {', '.join(keys)} changed")
        elif key == "image_digest":
            changes.append(f"image: {str(old.get(key))[:19]} -> {str(new.get(key))[:19]}")
        else:
            changes.append(f"{key} changed")
    return tuple(changes) or ("spec version changed",)


def plan(doc: Container, observed: ObservedContainer, options: Options) -> Action:
    del options
    record = observed.record
    if doc.state == "absent":
        return Action("none", "absent") if record is None else \
            Action("delete", f"remove container {record.short_id}")
    if observed.spec_error:
        return Action("none", "refused", refused=observed.spec_error)
    and_start = " and start" if doc.state == "running" else ""
    if observed.desired is None:
        return Action("create", f"pull {doc.image} and create{and_start}",
                      changes=(f"image {doc.image} is not in the store: pulled first",))
    if record is None:
        return Action("create", f"create{and_start}", payload=observed.desired)
    if record.spec_hash != observed.desired_hash:
        return Action("recreate", f"recreate {record.short_id}",
                      changes=_changed_fields(record.spec, asdict(observed.desired)),
                      payload=observed.desired)
    return _run_state(doc, observed)


def _run_state(doc: Container, observed: ObservedContainer) -> Action:
    """The right container exists: is it running (or stopped) as asked?"""
    status = observed.status
    running = status is not None and status.running
    if doc.state == "running" and not running:
        return Action("update", "start", changes=(f"was {status.status if status else 'gone'}",))
    if doc.state == "stopped" and running:
        return Action("update", "stop", changes=("was running",))
    return Action("none", status.status if status else "ok")
