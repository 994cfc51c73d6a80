"""Pull: reference -> manifest (the host's platform from an index) -> config -> layers,
every byte verified before it is admitted, layers downloaded (and unpacked) in parallel.

Interrupted pulls resume: finished blobs are in the store, a partial one continues from
where it stopped (HTTP Range). Unpacking happens as each layer arrives, once per
diff_id, into a temp dir renamed into place only when its diff_id matches the config.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from agent.errors import DigestMismatch, SizeMismatch, UnsupportedManifest
from agent.model.syntax.reference import ImageReference
from agent.oci import media
from agent.oci.config import MAX_CONFIG, ImageConfig, parse_config
from agent.oci.media import Descriptor, ImageIndex, ImageManifest, Platform
from agent.registry.client import RegistryClient
from agent.registry.hosts import Endpoint
from agent.store.layout import ImageStore

DEFAULT_JOBS = 4

Progress = Callable[[str, str, int, int], None]  # (what, digest, done bytes, total bytes)


@dataclass(frozen=True)
class PullResult:
    name: str
    manifest: Descriptor
    resolved: str  # the digest the reference resolved to (index or manifest)
    config: ImageConfig
    downloaded: int  # bytes fetched in this pull
    layers_present: int  # layers the store already had
    changed: bool  # the store's reference moved (or is new)


@dataclass(frozen=True)
class Resolved:
    manifest: ImageManifest
    descriptor: Descriptor
    resolved: str
    endpoint: Endpoint


def _no_progress(what: str, digest: str, done: int, total: int) -> None:
    """Progress is optional (the CLI draws bars, the reconciler logs nothing)."""


class Puller:
    def __init__(self, client: RegistryClient, store: ImageStore, *, jobs: int = DEFAULT_JOBS,
                 unpack: bool = True, progress: Progress | None = None) -> None:
        self.client, self.store, self.jobs, self.unpack = client, store, jobs, unpack
        self.progress = progress or _no_progress
        self._counter = threading.Lock()
        self._downloaded = 0

    def resolve(self, ref: ImageReference, platform: Platform | None = None) -> Resolved:
        """The image manifest ``ref`` names for ``platform`` (default: this host's)."""
        top = self.client.get_manifest(ref)
        parsed = media.parse(top.body, top.media_type)
        self.store.add_blob(top.body, top.digest)
        if isinstance(parsed, ImageManifest):
            media_type = parsed.media_type
            return Resolved(parsed, Descriptor(media_type, top.digest, len(top.body)),
                            top.digest, top.endpoint)
        child = parsed.select(platform or media.host())
        fetched = self.client.get_manifest(ref, child.digest, prefer=top.endpoint)
        if len(fetched.body) != child.size:
            raise SizeMismatch(f"manifest {child.digest}", child.size, len(fetched.body))
        manifest = media.parse(fetched.body, fetched.media_type or child.media_type)
        if isinstance(manifest, ImageIndex):
            raise UnsupportedManifest(f"{ref}: an index inside an index is not supported")
        self.store.add_blob(fetched.body, fetched.digest)
        return Resolved(manifest, Descriptor(child.media_type, child.digest, child.size),
                        top.digest, fetched.endpoint)

    def pull(self, ref: ImageReference, platform: Platform | None = None) -> PullResult:
        self._downloaded = 0
        with self.store.locked():
            resolved = self.resolve(ref, platform)
            manifest = resolved.manifest
            endpoints = self.client.pull_endpoints(ref, prefer=resolved.endpoint)
            self._blob(ref, manifest.config, endpoints, MAX_CONFIG)
            config = parse_config(self.store.read_blob(manifest.config.digest, MAX_CONFIG))
            if len(config.diff_ids) != len(manifest.layers):
                raise UnsupportedManifest(
                    f"{ref}: {len(manifest.layers)} layers but {len(config.diff_ids)} diff_ids")
            for layer in manifest.layers:
                if layer.media_type not in media.LAYER_TYPES:
                    raise UnsupportedManifest(f"{ref}: unknown layer type {layer.media_type}")
            present = sum(1 for layer in manifest.layers if self.store.has_blob(layer.digest))
            pairs = list(zip(manifest.layers, config.diff_ids, strict=True))
            with ThreadPoolExecutor(max_workers=max(1, self.jobs)) as pool:
                for future in [pool.submit(self._layer, ref, layer, diff_id, endpoints)
                               for layer, diff_id in pairs]:
                    future.result()
            changed = self.store.set_image(str(ref), resolved.descriptor, resolved.resolved)
        return PullResult(str(ref), resolved.descriptor, resolved.resolved, config,
                          self._downloaded, present, changed)

    def _layer(self, ref: ImageReference, layer: Descriptor, diff_id: str,
               endpoints: list[Endpoint]) -> None:
        self._blob(ref, layer, endpoints)
        if self.unpack:
            unpack_into_store(self.store, layer, diff_id)
            self.progress("unpacked", layer.digest, layer.size, layer.size)

    def _blob(self, ref: ImageReference, blob: Descriptor, endpoints: list[Endpoint],
              limit: int | None = None) -> None:
        """Download one blob into the store (resuming a partial), unless it is there."""
        if self.store.has_blob(blob.digest):
            self.progress("exists", blob.digest, blob.size, blob.size)
            return
        if limit is not None and blob.size > limit:
            raise SizeMismatch(f"blob {blob.digest}", f"at most {limit}", blob.size)
        with self.store.ingest(blob.digest, blob.size) as ingest:
            if ingest.done:
                return

            def fetch(endpoint: Endpoint) -> None:
                response = self.client.open_blob(ref, blob.digest, endpoint, ingest.offset)
                if ingest.offset and response.status == 200:
                    ingest.restart()  # the server ignored the range
                for chunk in response.chunks():
                    ingest.write(chunk)
                    with self._counter:
                        self._downloaded += len(chunk)
                    self.progress("downloading", blob.digest, ingest.offset, blob.size)
                ingest.commit()

            self.client.try_endpoints(endpoints, fetch)
        self.progress("downloaded", blob.digest, blob.size, blob.size)


def unpack_into_store(store: ImageStore, layer: Descriptor, diff_id: str) -> bool:
    """Unpack a stored layer blob once per diff_id; returns whether it unpacked now."""
    from agent.store.unpack import unpack_layer

    final = store.layer_dir(diff_id)
    if final.is_dir():
        return False
    staging = final.parent / f".{final.name}.{threading.get_native_id()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True, mode=0o755)
    try:
        result = unpack_layer(store.blob_path(layer.digest), staging, mode="overlay")
        if result.diff_id != diff_id:
            raise DigestMismatch(f"layer {layer.digest} (diff_id)", diff_id, result.diff_id)
        try:
            staging.rename(final)
        except OSError:
            if not final.is_dir():  # another pull won the race: theirs is as good
                raise
    finally:  # a refused or failed unpack leaves nothing behind
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return True


def layer_paths(store: ImageStore, config: ImageConfig) -> list[Path]:
    """The unpacked layers of an image, lowest first (overlayfs wants them top first)."""
    return [store.layer_dir(d) for d in config.diff_ids]
