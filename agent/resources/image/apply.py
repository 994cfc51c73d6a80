"""Pull (or load) the image the plan asked for."""

from __future__ import annotations

from agent.images.host import client_for, store_for
from agent.images.pull import Puller
from agent.model import Image
from agent.oci.media import Platform
from agent.reconcile.actions import Action, Applied
from agent.reconcile.handler import HostContext


def apply(doc: Image, action: Action, ctx: HostContext) -> Applied:
    store = store_for(ctx.state)
    if action.payload == "load":
        from agent.images.archive import load

        assert doc.archive is not None  # noqa: S101 - the plan loads only with an archive
        names = load(store, doc.archive, expect=str(doc.reference))
        return Applied({"loaded": ", ".join(names)})
    puller = Puller(client_for(ctx.state, ctx.daemon_json), store)
    result = puller.pull(doc.reference, Platform.parse(doc.platform) if doc.platform else None)
    return Applied({"digest": result.resolved, "manifest": result.manifest.digest,
                    "downloaded": str(result.downloaded)},
                   changed=result.changed or result.downloaded > 0)
