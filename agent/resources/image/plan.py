"""Decide an image's action from what the store holds (pure)."""

from __future__ import annotations

from agent.model import Image
from agent.reconcile.actions import Action, Options
from agent.resources.image.observe import ObservedImage


def _short(digest: str | None) -> str:
    return (digest or "?").removeprefix("sha256:")[:12]


def _when_held(doc: Image, observed: ObservedImage, source: str) -> Action | None:
    """The action for an image the store holds completely, or None if it does not."""
    ref, stored = doc.reference, observed.stored
    if stored is None or not observed.complete:
        return None
    if ref.digest:  # pinned: the digest is the identity, whatever the tag says
        held = ref.digest in (stored.manifest.digest, stored.resolved)
        return Action("none", f"{ref.familiar} is present") if held else None
    if doc.pull != "always" or doc.archive:
        return Action("none", f"{ref.familiar} is present ({_short(stored.resolved)})")
    if observed.remote_error:
        return Action("update", f"cannot check {ref.familiar} upstream",
                      refused=observed.remote_error)
    if observed.remote == stored.resolved:
        return Action("none", f"{ref.familiar} is up to date ({_short(stored.resolved)})")
    return Action("update", f"{source}: newer upstream",
                  changes=(f"digest {_short(stored.resolved)} -> {_short(observed.remote)}",),
                  payload="pull")


def plan(doc: Image, observed: ObservedImage, options: Options) -> Action:  # noqa: ARG001
    ref = doc.reference
    source = f"load {doc.archive}" if doc.archive else f"pull {ref}"
    held = _when_held(doc, observed, source)
    if held is not None:
        return held
    if doc.pull == "never" and not doc.archive:
        return Action("create", f"{ref.familiar} is absent",
                      refused=f"{ref.familiar} is not in the store and pull is 'never'")
    what = "incomplete in the store" if observed.stored is not None else "absent"
    return Action("create", f"{source} ({what})", changes=(f"{ref.familiar}: {what}",),
                  payload="load" if doc.archive else "pull")
