"""The image store on disk: an OCI image layout, plus the unpacked layers beside it.

    STATE/images/
      oci-layout, index.json        the OCI image layout: one descriptor per reference
      blobs/sha256/<hex>            manifests, indexes, configs, layers: verified on entry
      ingest/<hex>.partial          downloads under way or interrupted (resumed)
      layers/sha256/<diff-hex>/     each layer unpacked once, shared by every container
      lock, index.lock              flocks: pulls share the store, gc and rmi own it

index.json lists, per reference (``org.opencontainers.image.ref.name`` holds the full
normalized name, e.g. ``docker.io/library/busybox:latest``), the descriptor of the image
manifest for this host's platform; ``io.pyprov.resolved`` keeps the digest the tag
resolved to upstream (an index digest for multi-platform images), which ``pull: always``
compares with the registry's answer.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import ContentError, DigestMismatch, StoreError
from agent.fsutil.atomic import atomic_write, write_if_changed
from agent.oci import media
from agent.oci.config import MAX_CONFIG, ImageConfig, parse_config
from agent.oci.media import Descriptor, ImageManifest, is_digest
from agent.store.ingest import Ingest

REF_NAME = "org.opencontainers.image.ref.name"
RESOLVED = "io.pyprov.resolved"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass(frozen=True)
class StoredImage:
    name: str            # the full reference: docker.io/library/busybox:latest
    manifest: Descriptor  # the platform's ImageManifest
    resolved: str        # what the reference resolved to upstream (index or manifest)


def _hex(digest: str) -> str:
    if not is_digest(digest):
        raise StoreError(f"not a sha256 digest: {digest!r}")
    return digest.removeprefix("sha256:")


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    # -- locks ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, exclusive: bool = False, name: str = "lock") -> Iterator[None]:
        """Shared for pulls (they only add), exclusive for gc/rmi (they remove)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.root / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    # -- blobs ---------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / _hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def ingest(self, digest: str, size: int) -> Ingest:
        return Ingest(self.root / "ingest" / f"{_hex(digest)}.partial", self.blob_path(digest),
                      digest, size)

    def add_blob(self, data: bytes, digest: str) -> None:
        """A small blob already in memory (a manifest, a config): verified, then written."""
        with self.ingest(digest, len(data)) as ingest:
            if not ingest.done:
                ingest.restart()
                ingest.write(data)
                ingest.commit()

    def read_blob(self, digest: str, limit: int = 64 << 20) -> bytes:
        """A small blob, re-verified on every read (it is about to be trusted)."""
        import hashlib

        path = self.blob_path(digest)
        if path.stat().st_size > limit:
            raise StoreError(f"blob {digest} is larger than {limit} bytes")
        data = path.read_bytes()
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise DigestMismatch(f"stored blob {path}", digest, actual)
        return data

    def blobs(self) -> Iterator[str]:
        directory = self.root / "blobs" / "sha256"
        if directory.is_dir():
            for entry in directory.iterdir():
                if len(entry.name) == 64:
                    yield f"sha256:{entry.name}"

    # -- layers --------------------------------------------------------------------------

    def layer_dir(self, diff_id: str) -> Path:
        return self.root / "layers" / "sha256" / _hex(diff_id)

    def has_layer(self, diff_id: str) -> bool:
        return self.layer_dir(diff_id).is_dir()

    # -- references ----------------------------------------------------------------------

    def _index_path(self) -> Path:
        return self.root / "index.json"

    def _read_index(self) -> dict[str, Any]:
        try:
            data = json.loads(self._index_path().read_bytes())
        except FileNotFoundError:
            return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        except (OSError, ValueError) as exc:
            raise StoreError(f"the store index {self._index_path()} is unreadable: {exc}"
                             ) from None
        if not isinstance(data, dict) or not isinstance(data.get("manifests"), list):
            raise StoreError(f"the store index {self._index_path()} is not an OCI index")
        return data

    def images(self) -> list[StoredImage]:
        found = []
        for raw in self._read_index()["manifests"]:
            notes = raw.get("annotations") or {}
            name = notes.get(REF_NAME)
            if not isinstance(name, str):
                continue
            descriptor = Descriptor(str(raw.get("mediaType")), str(raw.get("digest")),
                                    int(raw.get("size") or 0))
            found.append(StoredImage(name, descriptor, str(notes.get(RESOLVED)
                                                           or descriptor.digest)))
        return found

    def manifest_of(self, image: StoredImage) -> ImageManifest:
        """The image's ImageManifest, re-verified (``StoreError`` for an index)."""
        return self.manifest_at(image.manifest.digest, image.manifest.media_type, image.name)

    def config_of(self, image: StoredImage) -> ImageConfig:
        return self.config_at(image.manifest.digest)

    def manifest_at(self, digest: str, media_type: str | None = None,
                    name: str | None = None) -> ImageManifest:
        """The ImageManifest stored at ``digest`` (named or not: a container's image may
        have lost its name), re-verified; ``StoreError`` for an index."""
        parsed = media.parse(self.read_blob(digest, media.MAX_MANIFEST), media_type)
        if not isinstance(parsed, ImageManifest):
            raise StoreError(f"{name or digest}: the store holds an index, not an image "
                             "manifest")
        return parsed

    def config_at(self, manifest_digest: str) -> ImageConfig:
        return parse_config(self.read_blob(self.manifest_at(manifest_digest).config.digest,
                                           MAX_CONFIG))

    def image(self, name: str) -> StoredImage | None:
        return next((image for image in self.images() if image.name == name), None)

    def set_image(self, name: str, manifest: Descriptor, resolved: str) -> bool:
        """Point ``name`` at ``manifest`` (whose blobs must all be in the store). Returns
        whether index.json changed (an unchanged pull writes nothing)."""
        if not self.has_blob(manifest.digest):
            raise ContentError(f"image {name}", manifest.digest, "no such blob in the store")
        with self.locked(exclusive=True, name="index.lock"):
            index = self._read_index()
            entries = [m for m in index["manifests"]
                       if (m.get("annotations") or {}).get(REF_NAME) != name]
            entry = Descriptor(manifest.media_type, manifest.digest, manifest.size,
                               annotations={REF_NAME: name, RESOLVED: resolved}).to_json()
            entries.append(entry)
            entries.sort(key=lambda m: m["annotations"][REF_NAME])
            index["manifests"] = entries
            return self._write_index(index)

    def remove_image(self, name: str) -> bool:
        with self.locked(exclusive=True, name="index.lock"):
            index = self._read_index()
            kept = [m for m in index["manifests"]
                    if (m.get("annotations") or {}).get(REF_NAME) != name]
            if len(kept) == len(index["manifests"]):
                return False
            index["manifests"] = kept
            return self._write_index(index)

    def _write_index(self, index: dict[str, Any]) -> bool:
        write_if_changed(self.root / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}\n',
                         mode=0o644, dir_mode=0o700)
        data = (json.dumps(index, indent=2, sort_keys=True) + "\n").encode()
        try:
            if self._index_path().read_bytes() == data:
                return False
        except FileNotFoundError:
            pass
        atomic_write(self._index_path(), data, mode=0o644, dir_mode=0o700)
        return True
