"""What the host runs under a Container's name, and the spec the manifest asks for now."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.errors import PyprovError
from agent.images.host import is_complete, store_for
from agent.model import Container
from agent.oci.config import ImageConfig
from agent.reconcile.handler import HostContext
from agent.runtime.engine import Runtime, Status
from agent.runtime.records import ContainerRecord
from agent.runtime.spec import ContainerSpec, SpecError, compose_spec, spec_hash
from agent.store.layout import StoredImage


@dataclass(frozen=True)
class ObservedContainer:
    record: ContainerRecord | None
    status: Status | None
    desired: ContainerSpec | None   # None: the image is not in the store yet
    desired_hash: str | None
    spec_error: str | None = None


_runtimes: dict[Path, Runtime] = {}
_images: dict[str, tuple[int, StoredImage | None, bool, ImageConfig | None]] = {}


def runtime_for(ctx: HostContext) -> Runtime:
    """One per state dir and process: its name index serves every pass."""
    runtime = _runtimes.get(ctx.state.root)
    if runtime is None:
        runtime = _runtimes[ctx.state.root] = Runtime(ctx.state)
    return runtime


def _image(ctx: HostContext, reference: str) -> tuple[StoredImage | None, ImageConfig | None]:
    """The stored image and its config, read (and verified) once per state of the store's
    index: a hundred containers of one image verify its blobs once."""
    store = store_for(ctx.state)
    try:
        stamp = (store.root / "index.json").stat().st_mtime_ns
    except FileNotFoundError:
        return None, None
    key = f"{ctx.state.root}\0{reference}"
    cached = _images.get(key)
    if cached is None or cached[0] != stamp:
        stored = store.image(reference)
        complete = stored is not None and is_complete(store, stored)
        config = store.config_of(stored) if stored is not None and complete else None
        cached = _images[key] = (stamp, stored, complete, config)
    return (cached[1], cached[3]) if cached[2] else (None, None)


def observe(doc: Container, ctx: HostContext) -> ObservedContainer:
    runtime = runtime_for(ctx)
    record = runtime.store.by_name(doc.name)
    status = runtime.status(record) if record is not None else None
    if doc.state == "absent":
        return ObservedContainer(record, status, None, None)
    stored, config = _image(ctx, str(doc.image_reference))
    if stored is None or config is None:
        return ObservedContainer(record, status, None, None)
    try:
        desired = compose_spec(doc, config, stored.manifest.digest)
    except (SpecError, PyprovError) as exc:
        return ObservedContainer(record, status, None, None, spec_error=str(exc))
    return ObservedContainer(record, status, desired, spec_hash(desired))
