"""What the host holds of an image, and (``pull: always`` only) what the registry says."""

from __future__ import annotations

from dataclasses import dataclass

from agent.errors import PyprovError
from agent.images.host import client_for, is_complete, store_for
from agent.model import Image
from agent.reconcile.handler import HostContext
from agent.store.layout import StoredImage


@dataclass(frozen=True)
class ObservedImage:
    stored: StoredImage | None
    complete: bool
    remote: str | None = None  # the digest the reference resolves to now, upstream
    remote_error: str | None = None


def observe(doc: Image, ctx: HostContext) -> ObservedImage:
    store = store_for(ctx.state)
    ref = doc.reference
    stored = store.image(str(ref))
    complete = stored is not None and is_complete(store, stored)
    if doc.pull != "always" or ref.digest or doc.archive:
        return ObservedImage(stored, complete)
    try:
        remote, _ = client_for(ctx.state, ctx.daemon_json).head_manifest(ref)
    except PyprovError as exc:
        return ObservedImage(stored, complete, remote_error=str(exc))
    return ObservedImage(stored, complete, remote)
