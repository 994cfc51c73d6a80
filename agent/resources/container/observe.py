"""What the host runs under a Container's name, and the spec the manifest asks for now."""

from __future__ import annotations

from dataclasses import dataclass

from agent.errors import PyprovError
from agent.images.host import is_complete, store_for
from agent.model import Container
from agent.reconcile.handler import HostContext
from agent.runtime.engine import Runtime, Status
from agent.runtime.records import ContainerRecord
from agent.runtime.spec import ContainerSpec, SpecError, compose_spec, spec_hash


@dataclass(frozen=True)
class ObservedContainer:
    record: ContainerRecord | None
    status: Status | None
    desired: ContainerSpec | None   # None: the image is not in the store yet
    desired_hash: str | None
    spec_error: str | None = None


def runtime_for(ctx: HostContext) -> Runtime:
    return Runtime(ctx.state)


def observe(doc: Container, ctx: HostContext) -> ObservedContainer:
    runtime = runtime_for(ctx)
    record = runtime.store.by_name(doc.name)
    status = runtime.status(record) if record is not None else None
    if doc.state == "absent":
        return ObservedContainer(record, status, None, None)
    store = store_for(ctx.state)
    stored = store.image(str(doc.image_reference))
    if stored is None or not is_complete(store, stored):
        return ObservedContainer(record, status, None, None)
    try:
        desired = compose_spec(doc, store.config_of(stored), stored.manifest.digest)
    except (SpecError, PyprovError) as exc:
        return ObservedContainer(record, status, None, None, spec_error=str(exc))
    return ObservedContainer(record, status, desired, spec_hash(desired))
