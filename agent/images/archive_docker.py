"""The ``docker save`` archive: ``manifest.json`` naming each image's config and layers.

What docker v25+ writes, and so what :func:`write_docker` writes (moby's
``image/tarexport/save.go``)::

    blobs/sha256/<config hex>     the config, byte for byte as stored
    blobs/sha256/<diff_id hex>    each layer as an uncompressed tar (what diff_ids hash)
    blobs/sha256/<manifest hex>   an OCI ImageManifest of those (layers ``...layer.v1.tar``)
    index.json                    one entry per tag: ``io.containerd.image.name`` = full
                                  name, ``org.opencontainers.image.ref.name`` = the tag
    manifest.json                 [{"Config": "blobs/sha256/<hex>", "RepoTags": ["busybox:latest"],
                                    "Layers": ["blobs/sha256/<diff hex>", ...],
                                    "LayerSources": {diff_id: descriptor}}]
    oci-layout, repositories      the OCI marker; the legacy {name: {tag: id}} map

Older writers (docker before v25) put ``<v1 id>/layer.tar`` and ``<config hex>.json`` in
place of blobs/, skopeo ``<diff hex>.tar``; containerd-based exporters may list
compressed layers. :func:`read_docker` takes them all, by manifest.json: each layer's
digest and diff_id are computed from its bytes, the diff_ids must be the config's, and a
name that claims a digest must hash to it. The image keeps the archive's own OCI
manifest when index.json has one for exactly these blobs, else gets one built here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

from agent.errors import DigestMismatch, SizeMismatch, StoreError
from agent.images.archive_oci import (
    CONTAINERD_NAME,
    LAYER_MEDIA,
    LAYOUT_BYTES,
    OCI_INDEX_FILE,
    OCI_LAYOUT,
    ArchivedImage,
    ArchiveReader,
    Blob,
    LayerSums,
    Plan,
    blob_member,
    check_layers,
    compact,
    full_name,
    hash_member,
    layout_index,
    read_blob,
)
from agent.model.syntax.reference import ImageReference, parse_reference
from agent.oci import media
from agent.oci.config import MAX_CONFIG, parse_config
from agent.oci.media import Descriptor, ImageManifest
from agent.store.compression import open_layer
from agent.store.layout import REF_NAME, ImageStore, StoredImage

if TYPE_CHECKING:
    from agent.images.archive import TarWriter

MANIFEST_JSON = "manifest.json"
REPOSITORIES = "repositories"


@dataclass(frozen=True)
class _Entry:
    config: str
    tags: tuple[str, ...]
    layers: tuple[str, ...]


def _strings(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _entries(reader: ArchiveReader) -> list[_Entry]:
    raw = reader.json(MANIFEST_JSON)
    if not isinstance(raw, list):
        raise StoreError(f"{reader.label}: manifest.json is not a list of images")
    entries = []
    for index, item in enumerate(raw):
        fields = item if isinstance(item, dict) else {}
        config, layers = fields.get("Config"), fields.get("Layers")
        tags = fields.get("RepoTags") or []  # docker writes null for an untagged image
        if not (isinstance(config, str) and _strings(tags) and _strings(layers)):
            raise StoreError(f"{reader.label}: manifest.json[{index}] needs Config (a path), "
                             "Layers (paths) and RepoTags (names or null)")
        entries.append(_Entry(config, tuple(tags), tuple(layers)))
    return entries


def read_docker(reader: ArchiveReader) -> Plan:
    """Every named image of manifest.json, verified (unnamed ones are noted, not read)."""
    plan = Plan()
    known = (_layout_manifests(reader)
             if reader.has(OCI_LAYOUT) and reader.has(OCI_INDEX_FILE) else {})
    for index, entry in enumerate(_entries(reader)):
        where = f"manifest.json[{index}]"
        names = tuple(full_name(tag, f"{reader.label}: {where}") for tag in entry.tags)
        if not names:
            plan.unnamed.append(entry.config)
            continue
        body, digest = hash_member(reader, entry.config, MAX_CONFIG)
        config = parse_config(body)
        sums = [plan.layer(reader, member) for member in entry.layers]
        check_layers(reader, where, config, sums)
        plan.add_blob(Blob(digest, len(body), entry.config))
        for member, layer in zip(entry.layers, sums, strict=True):
            plan.add_blob(Blob(layer.digest, layer.size, member))
        manifest = _manifest(reader, plan, known, Descriptor(media.OCI_CONFIG, digest, len(body)),
                             sums)
        layers = tuple((Descriptor(s.media_type, s.digest, s.size), s.diff_id) for s in sums)
        plan.images.append(ArchivedImage(names, manifest, manifest.digest, layers))
    return plan


def _manifest(reader: ArchiveReader, plan: Plan,
              known: dict[tuple[str, ...], tuple[Descriptor, ImageManifest]],
              config: Descriptor, sums: list[LayerSums]) -> Descriptor:
    """The layout's manifest for exactly these blobs (its digest survives the round
    trip), or a new one; either is added to ``plan``."""
    found = known.get((config.digest, *(layer.digest for layer in sums)))
    if found is None:
        desc, body = _build_manifest(config, sums)
        plan.add_blob(Blob(desc.digest, desc.size, body))
        return desc
    desc, manifest = found
    declared = (manifest.config.size, *(layer.size for layer in manifest.layers))
    actual = (config.size, *(layer.size for layer in sums))
    if declared != actual:
        raise SizeMismatch(f"{reader.label}: sizes in manifest {desc.digest}", str(actual),
                           str(declared))
    if any(layer.media_type not in media.LAYER_TYPES for layer in manifest.layers):
        raise StoreError(f"{reader.label}: manifest {desc.digest} has an unknown layer type")
    plan.add_blob(Blob(desc.digest, desc.size, blob_member(desc.digest)))
    return desc


def _layout_manifests(reader: ArchiveReader) -> dict[
        tuple[str, ...], tuple[Descriptor, ImageManifest]]:
    """The layout's top-level ImageManifests, verified, keyed by config and layer
    digests: how a manifest.json entry's own manifest is recognised."""
    found: dict[tuple[str, ...], tuple[Descriptor, ImageManifest]] = {}
    seen: set[str] = set()
    for desc in layout_index(reader).manifests:
        if desc.media_type not in media.MANIFESTS or desc.digest in seen:
            continue
        seen.add(desc.digest)
        body = read_blob(reader, desc, media.MAX_MANIFEST)
        manifest = media.parse(body, desc.media_type)
        if isinstance(manifest, ImageManifest):
            key = (manifest.config.digest, *(layer.digest for layer in manifest.layers))
            found[key] = (Descriptor(desc.media_type, desc.digest, desc.size), manifest)
    return found


def _build_manifest(config: Descriptor, layers: list[LayerSums]) -> tuple[Descriptor, bytes]:
    """An OCI ImageManifest for a config and its layers (a docker archive may carry none):
    compact, in the field order of docker's own (Go) marshalling, so the same image
    always gets the same digest."""
    body = compact({
        "schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
        "config": {"mediaType": media.OCI_CONFIG, "digest": config.digest,
                   "size": config.size},
        "layers": [{"mediaType": s.media_type, "digest": s.digest, "size": s.size}
                   for s in layers]})
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    return Descriptor(media.OCI_MANIFEST, digest, len(body)), body


# -- writing ------------------------------------------------------------------------------


@dataclass
class _Group:
    """The names of one image (docker's image ID: the config digest)."""

    image: StoredImage
    manifest: ImageManifest
    names: list[str] = field(default_factory=list)


def _chain_id(diff_ids: tuple[str, ...]) -> str:
    """The OCI ChainID of the top layer: what the legacy ``repositories`` map points at
    (docker's v1 IDs derive from it; no reader of manifest.json consults that file)."""
    chain = diff_ids[0]
    for diff_id in diff_ids[1:]:
        chain = "sha256:" + hashlib.sha256(f"{chain} {diff_id}".encode()).hexdigest()
    return chain.removeprefix("sha256:")


def _write_image(store: ImageStore, writer: TarWriter, group: _Group
                 ) -> tuple[Descriptor, tuple[str, ...], dict[str, Any]]:
    """Config, uncompressed layers and an OCI manifest of them; returns the manifest's
    descriptor, the diff_ids, and manifest.json's LayerSources."""
    config_desc = group.manifest.config
    body = store.read_blob(config_desc.digest, MAX_CONFIG)
    diff_ids = parse_config(body).diff_ids
    if len(diff_ids) != len(group.manifest.layers):
        raise StoreError(f"{group.image.name}: {len(group.manifest.layers)} layers but "
                         f"{len(diff_ids)} diff_ids in its config")
    writer.add_bytes(blob_member(config_desc.digest), body)
    sums = []
    for layer, diff_id in zip(group.manifest.layers, diff_ids, strict=True):
        member = blob_member(diff_id)
        if member not in writer.written:
            with open_layer(store.blob_path(layer.digest)) as tar:
                written, _ = writer.add_stream(member, tar)
            if written != diff_id:
                raise DigestMismatch(f"layer {layer.digest} of {group.image.name} "
                                     "(uncompressed)", diff_id, written)
        sums.append(LayerSums(diff_id, writer.written[member], diff_id, LAYER_MEDIA["tar"]))
    desc, manifest = _build_manifest(
        Descriptor(media.OCI_CONFIG, config_desc.digest, len(body)), sums)
    if blob_member(desc.digest) not in writer.written:
        writer.add_bytes(blob_member(desc.digest), manifest)
    sources = {s.diff_id: {"mediaType": s.media_type, "size": s.size, "digest": s.digest}
               for s in sums}
    return desc, diff_ids, sources


def write_docker(store: ImageStore, images: list[StoredImage], writer: TarWriter) -> None:
    """The docker v25+ archive (layout in the module docstring); only tags become
    RepoTags, as docker's own save does (a name@digest has no tag to load under)."""
    groups: dict[str, _Group] = {}
    for image in images:
        manifest = store.manifest_of(image)
        groups.setdefault(manifest.config.digest, _Group(image, manifest)).names.append(image.name)
    items: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for group in groups.values():
        desc, diff_ids, sources = _write_image(store, writer, group)
        tags = [ref for ref in map(parse_reference, group.names) if ref.tag and not ref.digest]
        for ref in tags:
            if diff_ids:  # docker refuses to save an image without layers; pyprov need not
                repo = ImageReference(ref.registry, ref.repository, None, None).familiar
                repositories.setdefault(repo, {})[str(ref.tag)] = _chain_id(diff_ids)
            entries.append(Descriptor(desc.media_type, desc.digest, desc.size, annotations={
                CONTAINERD_NAME: str(ref), REF_NAME: str(ref.tag)}).to_json())
        if not tags:
            entries.append(desc.to_json())
        items.append({"Config": blob_member(group.manifest.config.digest),
                      "RepoTags": [ref.familiar for ref in tags] or None,
                      "Layers": [blob_member(d) for d in diff_ids],
                      "LayerSources": sources})
    writer.add_bytes(OCI_INDEX_FILE, compact({"schemaVersion": 2, "mediaType": media.OCI_INDEX,
                                              "manifests": entries}))
    writer.add_bytes(MANIFEST_JSON, compact(items) + b"\n")
    writer.add_bytes(OCI_LAYOUT, LAYOUT_BYTES)
    writer.add_bytes(REPOSITORIES, compact(repositories) + b"\n")
