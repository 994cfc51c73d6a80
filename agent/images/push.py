"""Push and tag: the seeds' ``docker tag`` + ``docker push 192.168.88.92:5000/centos:7``.

A push sends the exact manifest bytes the store holds (so the digest is the same on
both sides), after every blob the registry lacks: config and layers, mounted from
another repository of the same registry when the image came from there, else uploaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.errors import NotFound
from agent.model.syntax.reference import ImageReference, parse_reference
from agent.oci import media
from agent.oci.media import ImageManifest
from agent.registry.client import RegistryClient
from agent.store.layout import ImageStore, StoredImage

READ_CHUNK = 1 << 20
Progress = Callable[[str, str, int, int], None]


@dataclass(frozen=True)
class PushResult:
    name: str
    digest: str
    blobs: dict[str, str]  # digest -> "exists" | "mounted" | "uploaded" | ...


def find(store: ImageStore, name: str) -> StoredImage:
    """A stored image by reference (normalized, so ``busybox`` finds
    ``docker.io/library/busybox:latest``)."""
    wanted = str(parse_reference(name))
    image = store.image(wanted)
    if image is None:
        raise NotFound(f"no image {name} in the store (`pyprov images` lists them)")
    return image


def tag(store: ImageStore, source: str, target: str) -> bool:
    """Another name for a stored image; returns whether the store changed."""
    image = find(store, source)
    new = parse_reference(target)
    return store.set_image(str(new), image.manifest, image.manifest.digest)


def _reader(path: Path) -> Callable[[], Iterator[bytes]]:
    def read() -> Iterator[bytes]:
        with path.open("rb") as blob:
            while chunk := blob.read(READ_CHUNK):
                yield chunk
    return read


def push(client: RegistryClient, store: ImageStore, name: str,
         progress: Progress | None = None) -> PushResult:
    image = find(store, name)
    ref = parse_reference(name)
    manifest_bytes = store.read_blob(image.manifest.digest, media.MAX_MANIFEST)
    manifest = media.parse(manifest_bytes, image.manifest.media_type)
    if not isinstance(manifest, ImageManifest):
        raise NotFound(f"{name} names an index; push one platform's image")
    endpoint = client.push_endpoint(ref)
    mount_from = _mount_source(store, image, ref)
    outcome: dict[str, str] = {}
    for blob in (manifest.config, *manifest.layers):
        outcome[blob.digest] = client.upload_blob(
            ref, blob.digest, size=blob.size, read=_reader(store.blob_path(blob.digest)),
            endpoint=endpoint, mount_from=mount_from)
        if progress:
            progress(outcome[blob.digest], blob.digest, blob.size, blob.size)
    digest = client.put_manifest(ref, manifest_bytes, image.manifest.media_type)
    return PushResult(str(ref), digest, outcome)


def _mount_source(store: ImageStore, image: StoredImage, target: ImageReference) -> str | None:
    """A repository of the target's registry that holds this image (by manifest digest)."""
    for other in store.images():
        if other.manifest.digest != image.manifest.digest:
            continue
        ref = parse_reference(other.name)
        if ref.registry == target.registry and ref.repository != target.repository:
            return ref.repository
    return None
