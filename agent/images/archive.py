"""``docker save`` / ``docker load`` for the store: docker-save and OCI archives.

``save`` writes the archive beside ``out`` under a temp name, fsyncs it and renames it
into place: ``out`` is the old file or the whole new archive, never half of one.

``load`` is two passes over the archive. The first verifies everything it will admit
(every blob hashed against its descriptor or its name, every layer's diff_id against its
config, configs and manifests parsed) and writes nothing; the second streams the same
members through the store's ingest (which checks size and digest again) and only then
points the references at them. So a damaged or tampered archive loads nothing at all. A
failure in the second pass (the file changed underneath) can leave verified blobs no
reference names, which gc collects; the references never move.

Formats: ``archive_docker`` (manifest.json, old and new layouts) and ``archive_oci``
(an OCI image layout, and the verified reading of tar members both formats use). The tar
writing is here: headers are made by :mod:`tarfile` but the stream is written by
:class:`TarWriter`, so a layer whose uncompressed size is known only after decompressing
it can still be streamed: its 512-byte header is reserved, then patched once the data is
written (GNU format, whose base-256 size field keeps it one block at any size).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO, Literal, Self

from agent.errors import DigestMismatch, SizeMismatch, StoreError
from agent.fsutil.atomic import fsync_dir, remove_stale_temps, temp_path
from agent.images.archive_docker import MANIFEST_JSON, read_docker, write_docker
from agent.images.archive_oci import (
    CHUNK,
    DAMAGED,
    OCI_LAYOUT,
    ArchivedImage,
    ArchiveReader,
    Blob,
    Plan,
    blob_member,
    full_name,
    read_oci,
    reference,
    write_oci,
)
from agent.model.syntax.reference import ImageReference, parse_reference
from agent.oci.media import Descriptor
from agent.store.compression import Reader
from agent.store.layout import ImageStore, StoredImage
from agent.store.unpack import MAX_HEADER_DATA

Format = Literal["docker", "oci"]
BLOCK = tarfile.BLOCKSIZE
_META_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
               tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)


def save(store: ImageStore, names: list[str], out: Path, *, format: Format = "docker") -> None:
    """Write the images ``names`` to ``out``: a ``docker save`` tar, or an OCI layout tar."""
    if format not in ("docker", "oci"):
        raise StoreError(f"unknown archive format {format!r} (docker or oci)")
    if not names:
        raise StoreError("save needs at least one image name")
    with store.locked():  # shared: gc must not remove blobs while they are copied
        images = _stored(store, names)
        with _atomic(out) as stream:
            writer = TarWriter(stream)
            if format == "docker":
                write_docker(store, images, writer)
            else:
                write_oci(store, images, writer)
            writer.close()


def load(store: ImageStore, archive: Path | str, *, expect: str | None = None,
         unpack: bool = True) -> list[str]:
    """Load a docker-save or OCI archive; returns the full names it set. With
    ``expect``, the archive must hold that reference (the Image resource's name, whose
    ``archive:`` arrives as a string). ``unpack``: unpack the layers as a pull does (an
    image counts as complete only then), before any reference moves."""
    with open_archive(Path(archive)) as reader:
        plan = _read(reader)
        if expect is not None:
            _expect(reader, plan, reference(expect, "expected image"))
        names = _names(reader, plan)
        with store.locked():
            for blob in plan.blobs.values():
                _admit(store, reader, blob)
            if unpack:
                _unpack(store, plan)
            for image in plan.images:
                for name in image.names:
                    store.set_image(name, image.manifest, image.resolved)
    return names


# -- save ---------------------------------------------------------------------------------


def _stored(store: ImageStore, names: list[str]) -> list[StoredImage]:
    found: dict[str, StoredImage] = {}
    for name in names:
        full = full_name(name, "save")
        image = store.image(full)
        if image is None:
            raise StoreError(f"no image {name} in the store (`pyprov images` lists them)")
        found.setdefault(full, image)
    return list(found.values())


@contextmanager
def _atomic(out: Path) -> Iterator[BinaryIO]:
    """A temp file beside ``out`` (same filesystem, so the rename is atomic), renamed
    over it only once complete and on disk. atomic_write takes bytes; archives stream."""
    remove_stale_temps(out)
    temp = temp_path(out)
    try:
        with temp.open("xb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        temp.replace(out)
    finally:
        temp.unlink(missing_ok=True)  # a no-op once renamed
    fsync_dir(out.parent)


def _header(name: str, size: int, directory: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size, info.mtime = size, 0  # reproducible: the same store writes the same bytes
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


class TarWriter:
    """A tar written to a seekable file: small members from memory, blobs streamed."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.written: dict[str, int] = {}  # member name -> size

    def _parents(self, name: str) -> None:
        """Directory entries before a member in them, as ``tar -c`` (and docker) writes."""
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth]) + "/"
            if directory not in self.written:
                self._out.write(_header(directory, 0, directory=True))
                self.written[directory] = 0

    def add_bytes(self, name: str, data: bytes) -> None:
        self._parents(name)
        self._out.write(_header(name, len(data)))
        self._out.write(data)
        self._pad(len(data))
        self.written[name] = len(data)

    def add_stream(self, name: str, source: Reader) -> tuple[str, int]:
        """Stream ``source`` in; returns the digest and size of what was written."""
        self._parents(name)
        start = self._out.tell()
        self._out.write(bytes(BLOCK))  # the header, once the size is known
        digest, size = hashlib.sha256(), 0
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            self._out.write(chunk)
            size += len(chunk)
        self._pad(size)
        header = _header(name, size)
        if len(header) != BLOCK:  # a long name would need a second header block
            raise StoreError(f"archive member name {name!r} is too long to stream")
        end = self._out.tell()
        self._out.seek(start)
        self._out.write(header)
        self._out.seek(end)
        self.written[name] = size
        return f"sha256:{digest.hexdigest()}", size

    def close(self) -> None:
        self._out.write(bytes(2 * BLOCK))  # end of archive

    def _pad(self, size: int) -> None:
        if size % BLOCK:
            self._out.write(bytes(BLOCK - size % BLOCK))

    def copy_blob(self, store: ImageStore, blob: Descriptor) -> None:
        """A stored blob, as stored, re-verified on the way out (it is about to be trusted)."""
        member = blob_member(blob.digest)
        if member in self.written:
            return
        with store.blob_path(blob.digest).open("rb") as source:
            digest, size = self.add_stream(member, source)
        if size != blob.size:
            raise SizeMismatch(f"stored blob {blob.digest}", blob.size, size)
        if digest != blob.digest:
            raise DigestMismatch(f"stored blob {blob.digest}", blob.digest, digest)


# -- load ---------------------------------------------------------------------------------


class CappedHeader(tarfile.TarInfo):
    """tarfile reads a PAX or GNU long-name payload into memory whole, before anyone can
    look at it: one claiming a gigabyte is refused from its header instead."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        header = super().frombuf(buf, encoding, errors)
        if header.type in _META_TYPES and header.size > MAX_HEADER_DATA:
            raise StoreError(f"a {header.size}-byte extended tar header: not an image archive")
        return header


@contextmanager
def open_archive(path: Path) -> Iterator[ArchiveReader]:
    """A tar, plain or compressed (``docker save | gzip`` is common), as members."""
    try:
        tar = tarfile.open(path, mode="r:*", tarinfo=CappedHeader)  # noqa: SIM115 - `with` below
    except DAMAGED:
        raise StoreError(f"{path}: not a tar archive (plain, or gzip, bzip2 or xz "
                         "compressed)") from None
    with tar:
        try:
            yield ArchiveReader(tar, str(path))
        except DAMAGED as exc:  # members are read with their own message: a safety net
            raise StoreError(f"{path}: the archive is damaged: {exc}") from None


def _read(reader: ArchiveReader) -> Plan:
    """The format from the content: manifest.json makes a docker archive (v25+ ones
    carry an OCI layout too), oci-layout alone an OCI one."""
    if reader.has(MANIFEST_JSON):
        return read_docker(reader)
    if reader.has(OCI_LAYOUT):
        return read_oci(reader)
    raise StoreError(f"{reader.label}: neither a docker-save archive (no manifest.json) "
                     "nor an OCI image layout (no oci-layout)")


def _names(reader: ArchiveReader, plan: Plan) -> list[str]:
    """Every name once; a name given to two different images is ambiguous."""
    owner: dict[str, str] = {}
    for image in plan.images:
        for name in image.names:
            if owner.setdefault(name, image.manifest.digest) != image.manifest.digest:
                raise StoreError(f"{reader.label}: {name} names two different images")
    if not owner:
        raise StoreError(f"{reader.label}: the archive names no image (unnamed: "
                         f"{', '.join(plan.unnamed) or 'none'}); pyprov keeps images by name")
    return list(owner)


def _matches(want: ImageReference, image: ArchivedImage) -> bool:
    for name in image.names:
        ref = parse_reference(name)
        if ref.name == want.name and (want.tag is None or ref.tag == want.tag) and (
                want.digest is None or want.digest in (image.manifest.digest, image.resolved)):
            return True
    return False


def _expect(reader: ArchiveReader, plan: Plan, want: ImageReference) -> None:
    """The archive must hold ``want``. A digest reference is also set as a name, as a
    pull by digest sets it, so the Image resource finds what it asked for."""
    for index, image in enumerate(plan.images):
        if _matches(want, image):
            if str(want) not in image.names:
                plan.images[index] = replace(image, names=(*image.names, str(want)))
            return
    held = ", ".join(parse_reference(n).familiar for i in plan.images for n in i.names)
    raise StoreError(f"{reader.label} does not hold {want.familiar}; "
                     f"it holds: {held or 'no named image'}")


def _admit(store: ImageStore, reader: ArchiveReader, blob: Blob) -> None:
    """One verified blob into the store, through ingest (size and digest checked again)."""
    if store.has_blob(blob.digest):
        return
    with store.ingest(blob.digest, blob.size) as ingest:
        if ingest.done:
            return
        ingest.restart()  # a partial left by an interrupted pull: simpler to rewrite it
        committed = False
        try:
            if isinstance(blob.source, bytes):
                ingest.write(blob.source)
            else:
                with reader.open(blob.source) as stream:
                    while chunk := stream.read(CHUNK):
                        ingest.write(chunk)
            ingest.commit()
            committed = True
        finally:
            if not committed:
                ingest.discard()


def _unpack(store: ImageStore, plan: Plan) -> None:
    """Each layer once per diff_id, by the puller's own routine (imported here, not at
    the top: pull.py brings the registry client, which neither save nor a refused load
    needs)."""
    from agent.images.pull import unpack_into_store

    for image in plan.images:
        for layer, diff_id in image.layers:
            unpack_into_store(store, layer, diff_id)
