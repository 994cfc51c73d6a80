"""Test images built offline, deterministically: same inputs, same bytes, same digests.

The images are :mod:`tests.registry.model` objects (Image, ImageIndex, Layer, Blob; their
names are re-exported here).

Layers are tars with fixed mtimes and owners, entries sorted, compressed with gzip (zlib
header with mtime 0) or zstd; configs are compact JSON, manifests are indented by three
spaces as ``docker push`` writes them, so a client that re-serializes a manifest instead of
keeping its bytes gets a different digest and is caught. Digests depend on this
machine's ``/bin/busybox`` (Debian's busybox-static) and zlib, nothing else.

Builders: :func:`busybox_image` (``"docker"``, ``"oci"``, ``"zstd"`` flavours of the same
content), :func:`multi_platform_index` (OCI index or Docker manifest list), and
:func:`build_image` for tests that compose their own from :class:`Entry` lists.
"""

from __future__ import annotations

import functools
import io
import json
import struct
import tarfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import zstandard

from tests.registry.model import (
    DOCKER,
    HOST_PLATFORM,
    OCI,
    OCI_LAYER_ZSTD,
    Blob,
    Compression,
    Image,
    ImageIndex,
    Layer,
    MediaTypes,
    Platform,
    sha256,
)

__all__ = [
    "BUSYBOX", "DOCKER", "HOST_PLATFORM", "OCI", "OCI_LAYER_ZSTD", "Blob", "Compression",
    "Entry", "Image", "ImageBuildError", "ImageIndex", "Layer", "MediaTypes", "Platform",
    "build_image", "busybox_image", "compress", "directory", "file", "hardlink",
    "image_config", "make_layer", "multi_platform_index", "opaque_whiteout", "symlink",
    "tar_bytes", "whiteout",
]

BUSYBOX = Path("/bin/busybox")
EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z: every mtime in every test layer
CREATED = "2024-01-01T00:00:00Z"
GZIP_LEVEL = 6
ZSTD_LEVEL = 3


class ImageBuildError(RuntimeError):
    """A test image cannot be built on this machine (e.g. busybox-static is missing)."""


# ---------------------------------------------------------------------- layer contents


@dataclass(frozen=True)
class Entry:
    """One tar entry of a layer; build with :func:`file`, :func:`directory` and friends."""

    path: str  # relative to the root, no leading slash
    kind: Literal["file", "dir", "symlink", "hardlink"]
    data: bytes = field(default=b"", repr=False)
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    target: str = ""  # symlink target, or the hard link's path in the layer


def file(path: str, data: bytes | str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path, "file", data.encode() if isinstance(data, str) else data, mode, uid, gid)


def directory(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path, "dir", mode=mode, uid=uid, gid=gid)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, "symlink", mode=0o777, target=target)


def hardlink(path: str, target: str) -> Entry:
    return Entry(path, "hardlink", target=target)


def whiteout(path: str) -> Entry:
    """Deletes ``path`` of a lower layer: the empty file ``DIR/.wh.NAME``."""
    parent, _, name = path.rpartition("/")
    return file(f"{parent}/.wh.{name}" if parent else f".wh.{name}", b"")


def opaque_whiteout(path: str) -> Entry:
    """Hides everything lower layers put in directory ``path``."""
    return file(f"{path}/.wh..wh..opq", b"")


def tar_bytes(entries: Iterable[Entry]) -> bytes:
    """A deterministic tar: entries sorted by path, fixed mtime, numeric owners only."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(entries, key=lambda e: e.path):
            info = tarfile.TarInfo(entry.path)
            info.mtime, info.mode, info.uid, info.gid = EPOCH, entry.mode, entry.uid, entry.gid
            if entry.kind == "file":
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                         "hardlink": tarfile.LNKTYPE}[entry.kind]
            info.linkname = entry.target
            tar.addfile(info)
    return buffer.getvalue()


def compress(data: bytes, compression: Compression, level: int | None = None) -> bytes:
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=level or ZSTD_LEVEL).compress(data)
    compressor = zlib.compressobj(level or GZIP_LEVEL, zlib.DEFLATED, 31)  # gzip, mtime 0
    return compressor.compress(data) + compressor.flush()


def make_layer(entries: Sequence[Entry], media_type: str = OCI.layer_gzip,
               compression: Compression = "gzip", level: int | None = None) -> Layer:
    tar = tar_bytes(entries)
    return Layer(Blob.of(media_type, compress(tar, compression, level)), sha256(tar), len(tar),
                 tuple(sorted(e.path for e in entries)), compression)


# ---------------------------------------------------------------------- images


def image_config(layers: Sequence[Layer], config: Mapping[str, Any], platform: Platform,
                 media_type: str) -> Blob:
    """The image config blob: platform, runtime ``config``, rootfs diff_ids, history."""
    document = {"created": CREATED, **platform.as_json(), "config": dict(config),
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
                "history": [{"created": CREATED, "created_by": f"pyprov test layer {i}"}
                            for i in range(len(layers))]}
    return Blob.of(media_type, json.dumps(document, separators=(",", ":")).encode())


def assemble(layers: Sequence[Layer], config: Mapping[str, Any], media: MediaTypes,
             platform: Platform = HOST_PLATFORM) -> Image:
    """An image from ready layers (their media types are kept as they are)."""
    config_blob = image_config(layers, config, platform, media.config)
    manifest = {"schemaVersion": 2, "mediaType": media.manifest,
                "config": config_blob.descriptor(),
                "layers": [layer.blob.descriptor() for layer in layers]}
    return Image(Blob.of(media.manifest, _indented(manifest)), config_blob, tuple(layers),
                 platform)


def build_image(layers: Sequence[Sequence[Entry]], config: Mapping[str, Any], *,
                media: MediaTypes = OCI, compression: Compression = "gzip",
                platform: Platform = HOST_PLATFORM) -> Image:
    """An image from layer contents; ``compression="zstd"`` needs OCI media types."""
    layer_type = OCI_LAYER_ZSTD if compression == "zstd" else media.layer_gzip
    if compression == "zstd" and media is not OCI:
        raise ValueError("zstd layers exist only in OCI media types")
    return assemble([make_layer(entries, layer_type, compression) for entries in layers],
                    config, media, platform)


def build_index(images: Sequence[Image], media: MediaTypes) -> ImageIndex:
    manifests = [image.manifest.descriptor(platform=image.platform.as_json())
                 for image in images]
    document = {"schemaVersion": 2, "mediaType": media.index, "manifests": manifests}
    return ImageIndex(Blob.of(media.index, _indented(document)), tuple(images))


# ---------------------------------------------------------------------- busybox

APPLETS = ("cat", "date", "env", "false", "grep", "hostname", "httpd", "id", "kill", "ls",
           "mkdir", "mount", "ps", "sh", "sleep", "stty", "test", "touch", "tr", "true", "tty",
           "wget")
WWW_UID = 33
BUSYBOX_CONFIG: Mapping[str, Any] = {
    "Entrypoint": ["/bin/httpd", "-f", "-v"],
    "Cmd": ["-p", "8080", "-h", "/srv/www"],
    "Env": ["PATH=/bin", "GREETING=hello from pyprov"],
    "WorkingDir": "/srv/www",
    "ExposedPorts": {"8080/tcp": {}},
    "User": "www",
    "StopSignal": "SIGINT",
    "Labels": {"org.pyprov.test.image": "busybox"},
}


def busybox_base_entries() -> list[Entry]:
    """Layer 1: static busybox, applet links, passwd/group (root, www=33), a few dirs."""
    if not BUSYBOX.is_file():
        raise ImageBuildError(f"{BUSYBOX} is missing: apt-get install busybox-static")
    binary = BUSYBOX.read_bytes()
    if _elf_interpreter(binary):
        raise ImageBuildError(f"{BUSYBOX} is dynamically linked: install busybox-static "
                              "(the image has no libc)")
    return [
        directory("bin"), file("bin/busybox", binary, 0o755),
        *(symlink(f"bin/{applet}", "busybox") for applet in APPLETS),
        hardlink("bin/echo", "bin/busybox"),
        directory("etc"),
        file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                           f"www:x:{WWW_UID}:{WWW_UID}:www:/var/www:/bin/false\n"),
        file("etc/group", f"root:x:0:\nwww:x:{WWW_UID}:\n"),
        file("etc/issue", "pyprov test busybox (deleted by layer 2)\n"),
        directory("opt"), directory("opt/docs"),
        file("opt/docs/old.txt", "hidden by the opaque whiteout of layer 2\n"),
        directory("root", 0o700), directory("tmp", 0o1777),
        directory("var"), directory("var/www", 0o755, WWW_UID, WWW_UID),
    ]


def busybox_app_entries() -> list[Entry]:
    """Layer 2: generated files, a whiteout of etc/issue, an opaque whiteout of opt/docs."""
    return [
        directory("etc"), whiteout("etc/issue"),
        file("etc/pyprov-release", "layer=2\n"),
        directory("opt"), directory("opt/docs"), opaque_whiteout("opt/docs"),
        file("opt/docs/new.txt", "written by layer 2\n"),
        directory("srv"), directory("srv/www"),
        file("srv/www/index.html", "<h1>hello from pyprov busybox</h1>\n"),
        directory("var"), directory("var/www", 0o755, WWW_UID, WWW_UID),
        file("var/www/owned-by-www", "uid 33\n", 0o640, WWW_UID, WWW_UID),
    ]


@functools.cache
def _busybox_layers(compression: Compression) -> tuple[Layer, Layer]:
    layer_type = OCI_LAYER_ZSTD if compression == "zstd" else OCI.layer_gzip
    return (make_layer(busybox_base_entries(), layer_type, compression),
            make_layer(busybox_app_entries(), layer_type, compression))


def busybox_layer(compression: Compression = "gzip") -> Layer:
    """The busybox base layer alone (shared with the platform and benchmark images)."""
    return _busybox_layers(compression)[0]


@functools.cache
def busybox_image(flavour: Literal["docker", "oci", "zstd"] = "oci") -> Image:
    """The small busybox image (2 layers, httpd entrypoint) in one media-type flavour."""
    media = DOCKER if flavour == "docker" else OCI
    compression: Compression = "zstd" if flavour == "zstd" else "gzip"
    layer_type = OCI_LAYER_ZSTD if flavour == "zstd" else media.layer_gzip
    layers = [layer.with_media_type(layer_type) for layer in _busybox_layers(compression)]
    return assemble(layers, BUSYBOX_CONFIG, media)


PLATFORMS = (Platform("linux", "amd64"), Platform("linux", "arm64"),
             Platform("linux", "arm", "v7"))


@functools.cache
def multi_platform_index(flavour: Literal["oci", "docker"] = "oci") -> ImageIndex:
    """linux/amd64, linux/arm64, linux/arm/v7 children: busybox base + ``/etc/platform``.

    The busybox binary is this machine's in every child (the platforms are labels for
    platform selection tests; only the host's child actually runs).
    """
    media = DOCKER if flavour == "docker" else OCI
    base = busybox_layer().with_media_type(media.layer_gzip)
    children = []
    for platform in PLATFORMS:
        marker = make_layer([directory("etc"), file("etc/platform", f"{platform}\n")],
                            media.layer_gzip)
        config = {"Cmd": ["/bin/cat", "/etc/platform"], "Env": ["PATH=/bin"]}
        children.append(assemble([base, marker], config, media, platform))
    return build_index(children, media)


# ---------------------------------------------------------------------- helpers


def _indented(document: Mapping[str, Any]) -> bytes:
    """Manifests as ``docker push`` writes them: three-space indents, key order kept."""
    return json.dumps(document, indent=3).encode()


def _elf_interpreter(binary: bytes) -> bool:
    """True if a 64-bit little-endian ELF has a PT_INTERP segment (is dynamically linked)."""
    if binary[:4] != b"\x7fELF" or binary[4] != 2:  # only ELF64 is checked
        return False
    phoff, = struct.unpack_from("<Q", binary, 0x20)
    entry_size, count = struct.unpack_from("<HH", binary, 0x36)
    return any(struct.unpack_from("<I", binary, phoff + i * entry_size)[0] == 3  # PT_INTERP
               for i in range(count))
