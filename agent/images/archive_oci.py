"""The OCI image layout inside an archive, and the verified reading of tar members that
both archive formats share.

Reading: members are looked up by name in the tar's table of contents and read from it;
nothing is ever extracted, so a hostile name cannot write anywhere, and nothing is
resolved on disk. A name the archive's own JSON asks for must be clean (no ``..``, not
absolute), must occur once, and must be a regular file, or a relative symlink to one
inside the archive, resolved as a name in the table of contents: docker before v25 links
``<id>/layer.tar`` to the copy of a layer two saved images share (a symlink that leaves
the archive or is absolute, a hard link, a device are refused). What is read is hashed
against what the name claims (``blobs/sha256/X`` must hash to X, whatever links led
there). Nothing here writes to the store: ``archive.load`` admits what this module and
``archive_docker`` verified, and only once all of it verified.

Writing (:func:`write_oci`): an OCI image layout, blobs as the store holds them,
index.json naming each image by its full reference::

    blobs/sha256/<hex>   layers (compressed, as pulled), configs, manifests, and the
                         index a tag resolved to, when the store kept it
    index.json           {"manifests": [{manifest descriptor, "annotations": {
                           "org.opencontainers.image.ref.name": "docker.io/library/busybox:latest",
                           "io.containerd.image.name": (the same),
                           "io.pyprov.resolved": index digest (only with that index)}}]}
    oci-layout           {"imageLayoutVersion":"1.0.0"}
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

from agent.errors import DigestMismatch, SizeMismatch, StoreError, UnsafeLayer, UnsupportedManifest
from agent.model.syntax.errors import SyntaxProblem
from agent.model.syntax.reference import ImageReference, parse_reference
from agent.oci import media
from agent.oci.config import MAX_CONFIG, ImageConfig, parse_config
from agent.oci.media import Descriptor, ImageIndex, ImageManifest
from agent.store.compression import open_layer, sniff
from agent.store.layout import REF_NAME, RESOLVED, ImageStore, StoredImage

if TYPE_CHECKING:
    from agent.images.archive import TarWriter

CHUNK = 1 << 20
MAX_MEMBERS = 100_000
"""A table of contents this long is not an image archive; every member costs memory."""
MAX_HOPS = 4
"""Symlinks followed from one name (docker's archives have at most one)."""
OCI_LAYOUT = "oci-layout"
OCI_INDEX_FILE = "index.json"
LAYOUT_BYTES = b'{"imageLayoutVersion":"1.0.0"}'
CONTAINERD_NAME = "io.containerd.image.name"
"""The annotation docker (v25+) and containerd put the full reference in."""
LAYER_MEDIA = {"tar": "application/vnd.oci.image.layer.v1.tar",
               "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
               "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}
# Errors tarfile and the decompressors raise for a damaged archive (not for our bugs).
DAMAGED = (tarfile.TarError, EOFError, zlib.error)
_CLAIMED = re.compile(r"^(?:blobs/sha256/([a-f0-9]{64})|([a-f0-9]{64})\.(?:json|tar))\Z")


def blob_member(digest: str) -> str:
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def claimed_digest(member: str) -> str | None:
    """The digest a member's name claims (``blobs/sha256/X``, ``X.json``, ``X.tar``)."""
    found = _CLAIMED.match(member)
    return f"sha256:{found.group(1) or found.group(2)}" if found else None


def reference(text: str, where: str) -> ImageReference:
    try:
        return parse_reference(text)
    except SyntaxProblem as exc:
        raise StoreError(f"{where}: {text!r} is not an image reference: {exc}") from None


def full_name(text: str, where: str) -> str:
    """A reference as the store keys it (``busybox`` -> ``docker.io/library/busybox:latest``)."""
    return str(reference(text, where))


def _clean(name: str) -> str | None:
    """The member name without ``./`` and empty parts; None if it could escape."""
    if name.startswith("/") or "\\" in name:
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


# -- reading ------------------------------------------------------------------------------


class ArchiveReader:
    """The members of an open tar, by clean name; only regular files are ever read."""

    def __init__(self, tar: tarfile.TarFile, label: str) -> None:
        self.label = label
        self._tar = tar
        self._members: dict[str, tarfile.TarInfo] = {}
        self._twice: set[str] = set()
        for count, info in enumerate(tar, 1):
            if count > MAX_MEMBERS:
                raise StoreError(f"{label}: more than {MAX_MEMBERS} members; not an image archive")
            name = _clean(info.name)
            if name is None:
                continue  # never asked for: requested names are clean too
            if name in self._members:
                self._twice.add(name)
            self._members[name] = info

    def has(self, name: str) -> bool:
        return name in self._members

    def _info(self, name: str) -> tarfile.TarInfo:
        clean = _clean(name)
        if clean is None:
            raise UnsafeLayer(name, f"{self.label}: the path would leave the archive")
        for _ in range(MAX_HOPS + 1):
            info = self._members.get(clean)
            if info is None:
                raise StoreError(f"{self.label}: no member {name!r} in the archive")
            if clean in self._twice:
                raise UnsafeLayer(name, f"{self.label}: {clean!r} occurs twice (which counts?)")
            if info.isreg():
                return info
            if not info.issym():
                raise UnsafeLayer(name, f"{self.label}: not a regular file or symlink")
            clean = self._target(name, clean, info.linkname)
        raise UnsafeLayer(name, f"{self.label}: more than {MAX_HOPS} symlinks")

    def _target(self, name: str, link: str, target: str) -> str:
        """A symlink as another name in this table of contents, resolved lexically and
        never on disk: relative, and not above the archive's root."""
        if target.startswith("/"):
            raise UnsafeLayer(name, f"{self.label}: a symlink to the absolute {target!r}")
        parts = link.split("/")[:-1]
        for part in target.split("/"):
            if part == "..":
                if not parts:
                    raise UnsafeLayer(name, f"{self.label}: symlink {target!r} leaves the archive")
                parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        return "/".join(parts)

    def size(self, name: str) -> int:
        return self._info(name).size

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        """The member's bytes as a stream (damage in the archive is a StoreError)."""
        stream = self._tar.extractfile(self._info(name))
        if stream is None:  # unreachable for a regular file; typeshed allows it
            raise StoreError(f"{self.label}: cannot read {name!r}")
        try:
            with stream:
                yield stream
        except DAMAGED as exc:
            raise StoreError(f"{self.label}: {name!r} is damaged: {exc}") from None

    def read(self, name: str, limit: int) -> bytes:
        """A small member (JSON): refused unread when larger than ``limit``."""
        size = self.size(name)
        if size > limit:
            raise SizeMismatch(f"{self.label}: {name}", f"at most {limit} bytes", size)
        with self.open(name) as stream:
            data = stream.read(limit + 1)
        if len(data) != size:
            raise StoreError(f"{self.label}: {name!r} is truncated")
        return data

    def json(self, name: str, limit: int = media.MAX_MANIFEST) -> Any:
        try:
            return json.loads(self.read(name, limit))
        except ValueError as exc:
            raise StoreError(f"{self.label}: {name} is not JSON: {exc}") from None


class _Hashing:
    """Hashes and counts what passes through: the blob's own digest, while the layer
    reader above it computes the diff_id from the same single read."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.hash, self.size, self.head = raw, hashlib.sha256(), 0, b""

    def read(self, size: int, /) -> bytes:
        chunk = self.raw.read(size)
        self.hash.update(chunk)
        self.size += len(chunk)
        if len(self.head) < 4:
            self.head += chunk[: 4 - len(self.head)]
        return chunk

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return f"sha256:{self.hash.hexdigest()}"


@dataclass(frozen=True)
class LayerSums:
    digest: str      # of the bytes as archived (compressed or not)
    size: int
    diff_id: str     # of the uncompressed tar
    media_type: str  # the OCI layer type its bytes show


def hash_layer(reader: ArchiveReader, member: str) -> LayerSums:
    """One streaming read of a layer member: its digest, size and diff_id. Bytes that do
    not decompress are reported as the digest mismatch they are when the name claims one."""
    claimed = claimed_digest(_clean(member) or member)
    with reader.open(member) as stream:
        raw = _Hashing(stream)
        diff = hashlib.sha256()
        try:
            # open_layer only calls read(); its BinaryIO annotation is narrower than its use
            with open_layer(cast(BinaryIO, raw)) as tar:
                while chunk := tar.read(CHUNK):
                    diff.update(chunk)
        except UnsafeLayer:
            raw.drain()
            if claimed is not None and claimed != raw.digest:
                raise DigestMismatch(f"{reader.label}: layer {member}", claimed,
                                     raw.digest) from None
            raise
        raw.drain()  # a decoder may stop before the end: hash every byte
    sums = LayerSums(raw.digest, raw.size, f"sha256:{diff.hexdigest()}",
                     LAYER_MEDIA[sniff(raw.head)])
    if claimed is not None and claimed != sums.digest:
        raise DigestMismatch(f"{reader.label}: layer {member}", claimed, sums.digest)
    return sums


def hash_member(reader: ArchiveReader, member: str, limit: int) -> tuple[bytes, str]:
    """A small blob named in JSON: its bytes and digest, checked against its name."""
    data = reader.read(member, limit)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    claimed = claimed_digest(_clean(member) or member)
    if claimed is not None and claimed != digest:
        raise DigestMismatch(f"{reader.label}: {member}", claimed, digest)
    return data, digest


def _sized_member(reader: ArchiveReader, blob: Descriptor) -> str:
    """``blobs/sha256/<hex>`` for a descriptor, refused if its size is not the member's."""
    member = blob_member(blob.digest)
    if reader.has(member) and reader.size(member) != blob.size:
        raise SizeMismatch(f"{reader.label}: {member}", blob.size, reader.size(member))
    return member


def read_blob(reader: ArchiveReader, blob: Descriptor, limit: int) -> bytes:
    """A small blob a descriptor names: size and digest checked."""
    data, _ = hash_member(reader, _sized_member(reader, blob), limit)
    return data


# -- what a verified archive will add to the store ----------------------------------------


@dataclass(frozen=True)
class Blob:
    """A verified blob, admitted later from ``source``: the member's name in the archive,
    or the bytes themselves (a manifest built here)."""

    digest: str
    size: int
    source: str | bytes


Layers = tuple[tuple[Descriptor, str], ...]
"""An image's layer blobs, each with the diff_id its config gives it (to unpack)."""


@dataclass(frozen=True)
class ArchivedImage:
    names: tuple[str, ...]
    manifest: Descriptor
    resolved: str
    layers: Layers


@dataclass
class Plan:
    """Everything verified, nothing yet admitted."""

    blobs: dict[str, Blob] = field(default_factory=dict)
    images: list[ArchivedImage] = field(default_factory=list)
    unnamed: list[str] = field(default_factory=list)  # what entries without a name were
    layers: dict[str, LayerSums] = field(default_factory=dict)  # by member: images share
    manifests: dict[str, Layers] = field(default_factory=dict)  # verified, by digest

    def add_blob(self, blob: Blob) -> None:
        self.blobs.setdefault(blob.digest, blob)

    def layer(self, reader: ArchiveReader, member: str) -> LayerSums:
        """A layer member's sums, hashed once however many images use it."""
        if member not in self.layers:
            self.layers[member] = hash_layer(reader, member)
        return self.layers[member]


def check_layers(reader: ArchiveReader, where: str, config: ImageConfig,
                 sums: list[LayerSums]) -> None:
    """The layers are the ones the config's rootfs.diff_ids name, in order."""
    if len(sums) != len(config.diff_ids):
        raise StoreError(f"{reader.label}: {where} has {len(sums)} layers but its config "
                         f"lists {len(config.diff_ids)} diff_ids")
    for index, (got, wanted) in enumerate(zip(sums, config.diff_ids, strict=True)):
        if got.diff_id != wanted:
            raise DigestMismatch(f"{reader.label}: {where} layer {index} (diff_id)",
                                 wanted, got.diff_id)


def verify_manifest(reader: ArchiveReader, plan: Plan, desc: Descriptor) -> Layers:
    """An ImageManifest, its config and its layers, all checked and added to ``plan``."""
    if desc.digest in plan.manifests:
        return plan.manifests[desc.digest]
    manifest = media.parse(read_blob(reader, desc, media.MAX_MANIFEST), desc.media_type)
    if not isinstance(manifest, ImageManifest):
        raise UnsupportedManifest(f"{reader.label}: {desc.digest} is an index, not an image")
    config = parse_config(read_blob(reader, manifest.config, MAX_CONFIG))
    for layer in manifest.layers:
        if layer.media_type not in media.LAYER_TYPES:
            raise UnsupportedManifest(f"{reader.label}: unknown layer type {layer.media_type}")
    sums = [plan.layer(reader, _sized_member(reader, layer)) for layer in manifest.layers]
    check_layers(reader, desc.digest, config, sums)
    for blob in (manifest.config, *manifest.layers, desc):
        plan.add_blob(Blob(blob.digest, blob.size, blob_member(blob.digest)))
    plan.manifests[desc.digest] = tuple(zip(manifest.layers, config.diff_ids, strict=True))
    return plan.manifests[desc.digest]


def layout_index(reader: ArchiveReader) -> ImageIndex:
    """The layout's index.json (``mediaType`` may be absent: older writers omit it)."""
    layout = reader.json(OCI_LAYOUT, 4096)
    version = layout.get("imageLayoutVersion") if isinstance(layout, dict) else None
    if not isinstance(version, str) or not version.startswith("1."):
        raise StoreError(f"{reader.label}: oci-layout version {version!r} is not 1.x")
    index = media.parse(reader.read(OCI_INDEX_FILE, media.MAX_MANIFEST), media.OCI_INDEX)
    if not isinstance(index, ImageIndex):
        raise StoreError(f"{reader.label}: index.json is not an image index")
    return index


def _names(desc: Descriptor, where: str) -> tuple[str, ...]:
    """containerd's full name if given, else ref.name when it is a full reference: a
    bare tag (``latest``, as ``skopeo copy ... oci:dir:latest`` writes) names no repository."""
    notes = desc.annotations
    text = notes.get(CONTAINERD_NAME) or notes.get(REF_NAME) or ""
    if not text or (CONTAINERD_NAME not in notes and "/" not in text and ":" not in text):
        return ()
    return (full_name(text, where),)


def _resolved(reader: ArchiveReader, plan: Plan, desc: Descriptor) -> str:
    """pyprov's own annotation: the index a tag resolved to upstream, trusted only when
    that index is in the archive, hashes right and lists this manifest."""
    digest = desc.annotations.get(RESOLVED)
    if not digest or digest == desc.digest or not media.is_digest(digest):
        return desc.digest
    if not reader.has(blob_member(digest)):
        return desc.digest
    body, _ = hash_member(reader, blob_member(digest), media.MAX_MANIFEST)
    index = media.parse(body, None)
    if not isinstance(index, ImageIndex) or desc.digest not in {
            d.digest for d in index.manifests}:
        raise StoreError(f"{reader.label}: {digest} is not an index listing {desc.digest}")
    plan.add_blob(Blob(digest, len(body), blob_member(digest)))
    return digest


def read_oci(reader: ArchiveReader) -> Plan:
    """An OCI image layout: each named descriptor, an image or an index (this host's
    platform chosen from it, as a pull would)."""
    plan = Plan()
    for desc in layout_index(reader).manifests:
        names = _names(desc, f"{reader.label}: index.json")
        if not names:
            plan.unnamed.append(desc.annotations.get(REF_NAME) or desc.digest)
            continue
        if desc.media_type in media.INDEXES:
            body = read_blob(reader, desc, media.MAX_MANIFEST)
            index = media.parse(body, desc.media_type)
            if not isinstance(index, ImageIndex):
                raise UnsupportedManifest(f"{reader.label}: {desc.digest} is not an index")
            child = index.select(media.host())
            layers = verify_manifest(reader, plan, child)
            plan.add_blob(Blob(desc.digest, desc.size, blob_member(desc.digest)))
            manifest, resolved = Descriptor(child.media_type, child.digest, child.size), desc.digest
        else:
            layers = verify_manifest(reader, plan, desc)
            manifest = Descriptor(desc.media_type, desc.digest, desc.size)
            resolved = _resolved(reader, plan, desc)
        plan.images.append(ArchivedImage(names, manifest, resolved, layers))
    return plan


# -- writing ------------------------------------------------------------------------------


def _stored_index(store: ImageStore, image: StoredImage) -> Descriptor | None:
    """The index the tag resolved to, when the store kept it and it lists this image."""
    if image.resolved == image.manifest.digest or not store.has_blob(image.resolved):
        return None
    body = store.read_blob(image.resolved, media.MAX_MANIFEST)
    try:
        index = media.parse(body, None)
    except UnsupportedManifest:  # no mediaType to tell it by: the archive goes without
        return None
    if not isinstance(index, ImageIndex) or image.manifest.digest not in {
            d.digest for d in index.manifests}:
        return None
    return Descriptor(index.media_type, image.resolved, len(body))


def write_oci(store: ImageStore, images: list[StoredImage], writer: TarWriter) -> None:
    """An OCI image layout: blobs as stored; index.json names each image by its full
    reference (ref.name, and containerd's annotation that docker v25+ reads)."""
    entries = []
    for image in images:
        manifest = store.manifest_of(image)
        for blob in (*manifest.layers, manifest.config, image.manifest):
            writer.copy_blob(store, blob)
        notes = {REF_NAME: image.name, CONTAINERD_NAME: image.name}
        index = _stored_index(store, image)
        if index is not None:
            writer.copy_blob(store, index)
            notes[RESOLVED] = index.digest
        entries.append(Descriptor(image.manifest.media_type, image.manifest.digest,
                                  image.manifest.size, annotations=notes).to_json())
    writer.add_bytes(OCI_INDEX_FILE, compact({"schemaVersion": 2, "mediaType": media.OCI_INDEX,
                                              "manifests": entries}))
    writer.add_bytes(OCI_LAYOUT, LAYOUT_BYTES)


def compact(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()
