"""The image model of the test package, named after the OCI image spec.

An :class:`Image` is an ImageManifest (its exact bytes in ``manifest``) with its config
and :class:`Layer` blobs; an :class:`ImageIndex` is an ImageIndex or Docker manifest list
with its child images. Every :class:`Blob` knows its media type, digest and size, and
holds its bytes in memory or (the big benchmark image) in a file.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform as host_platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, cast

import zstandard

__all__ = ["DOCKER", "HOST_PLATFORM", "OCI", "OCI_LAYER_ZSTD", "Blob", "Compression", "Image",
           "ImageIndex", "Layer", "MediaTypes", "Platform", "sha256"]

Compression = Literal["gzip", "zstd"]


@dataclass(frozen=True)
class MediaTypes:
    """One family of media types: Docker schema 2 or OCI."""

    manifest: str
    config: str
    layer_gzip: str
    index: str


DOCKER = MediaTypes(manifest="application/vnd.docker.distribution.manifest.v2+json",
                    config="application/vnd.docker.container.image.v1+json",
                    layer_gzip="application/vnd.docker.image.rootfs.diff.tar.gzip",
                    index="application/vnd.docker.distribution.manifest.list.v2+json")
OCI = MediaTypes(manifest="application/vnd.oci.image.manifest.v1+json",
                 config="application/vnd.oci.image.config.v1+json",
                 layer_gzip="application/vnd.oci.image.layer.v1.tar+gzip",
                 index="application/vnd.oci.image.index.v1+json")
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def as_json(self) -> dict[str, str]:
        found = {"architecture": self.architecture, "os": self.os}
        return found | ({"variant": self.variant} if self.variant else {})

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


_ARCHITECTURES = {"x86_64": Platform("linux", "amd64"), "aarch64": Platform("linux", "arm64"),
                  "armv7l": Platform("linux", "arm", "v7"), "s390x": Platform("linux", "s390x"),
                  "ppc64le": Platform("linux", "ppc64le")}
HOST_PLATFORM = _ARCHITECTURES.get(host_platform.machine(), Platform("linux", "amd64"))


@dataclass(frozen=True)
class Blob:
    """Content-addressed bytes, in memory (``data``) or in a file (``path``)."""

    media_type: str
    digest: str
    size: int
    data: bytes | None = field(default=None, repr=False)
    path: Path | None = None

    @classmethod
    def of(cls, media_type: str, data: bytes) -> Blob:
        return cls(media_type, sha256(data), len(data), data=data)

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    def open(self) -> IO[bytes]:
        return io.BytesIO(self.data) if self.data is not None else self._path().open("rb")

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        """The OCI descriptor of this blob (``platform=...`` and such as ``extra``)."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size,
                **extra}

    def json(self) -> Any:
        return json.loads(self.read())

    def _path(self) -> Path:
        assert self.path is not None
        return self.path


@dataclass(frozen=True)
class Layer:
    """A layer blob plus what its uncompressed tar is: ``diff_id``, size, entry paths."""

    blob: Blob
    diff_id: str
    uncompressed_size: int
    paths: tuple[str, ...]
    compression: Compression = "gzip"

    def with_media_type(self, media_type: str) -> Layer:
        blob = Blob(media_type, self.blob.digest, self.blob.size, self.blob.data,
                    self.blob.path)
        return Layer(blob, self.diff_id, self.uncompressed_size, self.paths, self.compression)

    def open_tar(self) -> IO[bytes]:
        """The uncompressed tar stream (for ``docker save`` archives, for checks)."""
        if self.compression == "zstd":
            return zstandard.ZstdDecompressor().stream_reader(self.blob.open(),
                                                              closefd=True)
        return cast(IO[bytes], gzip.GzipFile(fileobj=self.blob.open(), mode="rb"))


@dataclass(frozen=True)
class Image:
    """An ImageManifest (``manifest`` holds its exact bytes), config and layers."""

    manifest: Blob
    config: Blob
    layers: tuple[Layer, ...]
    platform: Platform

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def media_type(self) -> str:
        return self.manifest.media_type

    @property
    def blobs(self) -> tuple[Blob, ...]:
        """What a push uploads before the manifest: config, then layers."""
        return (self.config, *(layer.blob for layer in self.layers))

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(layer.diff_id for layer in self.layers)


@dataclass(frozen=True)
class ImageIndex:
    """An OCI ImageIndex or Docker manifest list (``manifest``) and its child images."""

    manifest: Blob
    images: tuple[Image, ...]

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def media_type(self) -> str:
        return self.manifest.media_type

    def for_platform(self, wanted: Platform | str) -> Image:
        return next(image for image in self.images if str(image.platform) == str(wanted))


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"
