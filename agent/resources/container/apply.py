"""Carries out a Container's plan with the runtime (pulling a missing image first)."""

from __future__ import annotations

from agent.images.host import client_for, store_for
from agent.images.pull import Puller
from agent.model import Container
from agent.reconcile.actions import Action, Applied
from agent.reconcile.handler import HostContext
from agent.resources.container.observe import observe, runtime_for
from agent.runtime.spec import ContainerSpec


def apply(doc: Container, action: Action, ctx: HostContext) -> Applied:
    runtime = runtime_for(ctx)
    record = runtime.store.by_name(doc.name)
    if action.op == "delete":
        if record is not None:
            runtime.remove(record, force=True)
        return Applied()
    if action.summary in ("start", "stop") and record is not None:
        if action.summary == "start":
            status = runtime.start(record)
            return Applied({"status": status.status})
        runtime.stop(record)
        return Applied({"status": "exited"})
    spec = action.payload
    if not isinstance(spec, ContainerSpec):  # the image had to be pulled first
        Puller(client_for(ctx.state, ctx.daemon_json), store_for(ctx.state)).pull(
            doc.image_reference)
        spec = observe(doc, ctx).desired
        if spec is None:
            raise RuntimeError(f"image {doc.image} still incomplete after the pull")
    reuse: dict[str, str] = {}
    if record is not None:  # recreate: the old one goes, its anonymous volumes stay
        data_dirs = {str(runtime.volumes.data_dir(name)): name for name in record.volumes}
        reuse = {m["target"]: data_dirs[m["source"]] for m in record.mounts
                 if m["source"] in data_dirs}
        runtime.remove(record, force=True)
    created = runtime.create(spec, managed=True, reuse_volumes=reuse)
    details = {"id": created.short_id}
    if doc.state == "running":
        details["status"] = runtime.start(created).status
    return Applied(details)
