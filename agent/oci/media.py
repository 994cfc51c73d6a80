"""OCI and Docker media types, descriptors, and the parsing of ImageManifest / ImageIndex.

A registry's answer is trusted for nothing: the body must be JSON of a known media type
whose declared ``mediaType`` agrees with the one the registry sent, every descriptor
must carry a valid digest and a size, and schema 1 is refused with a message that says
how to get a usable image (docker dropped schema 1 pulls too).
"""

from __future__ import annotations

import json
import platform as host_platform
import re
from dataclasses import dataclass, field
from typing import Any

from agent.errors import UnsupportedManifest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")

MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join((*MANIFESTS, *INDEXES))

LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
)
MAX_MANIFEST = 4 * 1024 * 1024  # the distribution spec's suggested limit for manifests
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}\Z")


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        os_name, _, rest = text.partition("/")
        arch, _, variant = rest.partition("/")
        return normalize(cls(os_name, arch, variant or None))

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm",
                 "armel": "arm", "i386": "386", "i686": "386"}


def normalize(p: Platform) -> Platform:
    """containerd's platforms.Normalize: arm64's variant v8 is the default, arm's is v7."""
    arch = _ARCH_ALIASES.get(p.architecture, p.architecture)
    variant = p.variant
    if arch == "arm64" and variant in ("v8", "8"):
        variant = None
    if arch == "arm" and variant is None:
        variant = "v7"
    return Platform(p.os.lower(), arch, variant)


def host() -> Platform:
    machine = host_platform.machine().lower()
    return normalize(Platform("linux", machine, "v7" if machine.startswith("armv7") else None))


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                                "size": self.size}
        if self.platform:
            data["platform"] = {"os": self.platform.os,
                                "architecture": self.platform.architecture}
            if self.platform.variant:
                data["platform"]["variant"] = self.platform.variant
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        return data


@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class ImageIndex:
    media_type: str
    manifests: tuple[Descriptor, ...]

    def select(self, wanted: Platform) -> Descriptor:
        """The child for ``wanted``; a variant-less request takes the first of its arch."""
        candidates = [d for d in self.manifests if d.platform and d.media_type in MANIFESTS]
        for d in candidates:
            assert d.platform is not None  # noqa: S101 - filtered just above
            found = normalize(d.platform)
            if (found.os, found.architecture) == (wanted.os, wanted.architecture) and (
                    wanted.variant is None or found.variant == wanted.variant):
                return d
        offered = ", ".join(str(d.platform) for d in candidates) or "none"
        raise UnsupportedManifest(f"no image for platform {wanted} in the index "
                                  f"(it offers: {offered}); set `platform:` to one of them")


def is_digest(text: str) -> bool:
    return bool(_DIGEST.match(text))


def _descriptor(raw: object, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise UnsupportedManifest(f"{where}: a descriptor must be an object")
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise UnsupportedManifest(f"{where}: descriptor without a mediaType")
    if not isinstance(digest, str) or not is_digest(digest):
        raise UnsupportedManifest(f"{where}: descriptor digest {digest!r} is not sha256:<hex>")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise UnsupportedManifest(f"{where}: descriptor size {size!r} is not a byte count")
    plat = raw.get("platform")
    platform = None
    if isinstance(plat, dict) and isinstance(plat.get("os"), str) and isinstance(
            plat.get("architecture"), str):
        variant = plat.get("variant")
        platform = Platform(plat["os"], plat["architecture"],
                            variant if isinstance(variant, str) and variant else None)
    notes = raw.get("annotations")
    annotations = {str(k): str(v) for k, v in notes.items()} if isinstance(notes, dict) else {}
    return Descriptor(media_type, digest, size, platform, annotations)


def json_object(body: bytes, what: str) -> dict[str, Any]:
    """``body`` as a JSON object, or UnsupportedManifest naming ``what`` it should be."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise UnsupportedManifest(f"{what} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UnsupportedManifest(f"{what} is not a JSON object")
    return data


def parse(body: bytes, content_type: str | None) -> ImageManifest | ImageIndex:
    """Parse a manifest or index; ``content_type`` is what the registry declared."""
    if len(body) > MAX_MANIFEST:
        raise UnsupportedManifest(f"manifest of {len(body)} bytes exceeds {MAX_MANIFEST}")
    data = json_object(body, "the manifest")
    declared = data.get("mediaType")
    sent = (content_type or "").split(";")[0].strip()
    if data.get("schemaVersion") == 1 or declared in DOCKER_SCHEMA1 or sent in DOCKER_SCHEMA1:
        raise UnsupportedManifest(
            "the registry serves this image in Docker schema 1, which pyprov (like current "
            "docker) does not pull; push it again with a current client to convert it")
    media_type = declared if isinstance(declared, str) else sent
    if isinstance(declared, str) and sent and sent != declared and sent not in (
            "application/json", "application/octet-stream"):
        raise UnsupportedManifest(f"the registry sent Content-Type {sent!r} for a manifest "
                                  f"whose mediaType is {declared!r}")
    if media_type in INDEXES:
        entries = data.get("manifests")
        if not isinstance(entries, list):
            raise UnsupportedManifest("an index without a manifests list")
        return ImageIndex(media_type, tuple(
            _descriptor(d, f"manifests[{i}]") for i, d in enumerate(entries)))
    if media_type in MANIFESTS:
        layers = data.get("layers")
        if not isinstance(layers, list):
            raise UnsupportedManifest("an image manifest without a layers list")
        return ImageManifest(media_type, _descriptor(data.get("config"), "config"),
                             tuple(_descriptor(d, f"layers[{i}]") for i, d in enumerate(layers)))
    raise UnsupportedManifest(f"unknown manifest media type {media_type or sent!r}")
