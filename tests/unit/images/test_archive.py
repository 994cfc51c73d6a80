"""save / load: round trips between two real stores, the archive layouts docker and
skopeo read, and hostile or damaged archives refused with nothing admitted."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

from agent.errors import DigestMismatch, SizeMismatch, StoreError, UnsafeLayer
from agent.images.archive import Format, load, save
from agent.images.host import is_complete
from agent.oci import media
from agent.oci.config import parse_config
from agent.oci.media import Descriptor, ImageManifest
from agent.store.layout import ImageStore

Entries = list[tuple[tarfile.TarInfo, bytes | None]]
BUSYBOX = "docker.io/library/busybox:latest"
APP = "registry.example:5000/team/app:1.0"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hexof(digest: str) -> str:
    return digest.removeprefix("sha256:")


def layer_tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@dataclass(frozen=True)
class Built:
    name: str
    manifest: Descriptor
    config: bytes
    diff_ids: tuple[str, ...]
    layers: tuple[bytes, ...]  # the uncompressed tars


def compress(tar: bytes, how: str) -> tuple[bytes, str]:
    if how == "gzip":
        return gzip.compress(tar, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if how == "zstd":
        zstd = zstandard.ZstdCompressor().compress(tar)
        return zstd, "application/vnd.oci.image.layer.v1.tar+zstd"
    return tar, "application/vnd.oci.image.layer.v1.tar"


def add_image(store: ImageStore, name: str, layers: list[dict[str, bytes]],
              *, how: str = "gzip", cmd: str = "sh", docker_types: bool = False) -> Built:
    """A small image put in the store the way a pull leaves it (OCI or Docker schema 2)."""
    tars = [layer_tar(files) for files in layers]
    descriptors = []
    for tar in tars:
        blob, media_type = compress(tar, how)
        if docker_types:
            media_type = "application/vnd.docker.image.rootfs.diff.tar.gzip"
        store.add_blob(blob, sha(blob))
        descriptors.append({"mediaType": media_type, "digest": sha(blob), "size": len(blob)})
    manifest_type = media.DOCKER_MANIFEST if docker_types else media.OCI_MANIFEST
    config_type = media.DOCKER_CONFIG if docker_types else media.OCI_CONFIG
    diff_ids = tuple(sha(tar) for tar in tars)
    host = media.host()
    config = json.dumps({"architecture": host.architecture, "os": "linux",
                         "config": {"Cmd": [cmd]},
                         "rootfs": {"type": "layers", "diff_ids": list(diff_ids)}}).encode()
    store.add_blob(config, sha(config))
    manifest = json.dumps({"schemaVersion": 2, "mediaType": manifest_type,
                           "config": {"mediaType": config_type, "digest": sha(config),
                                      "size": len(config)},
                           "layers": descriptors}).encode()
    store.add_blob(manifest, sha(manifest))
    desc = Descriptor(manifest_type, sha(manifest), len(manifest))
    store.set_image(name, desc, desc.digest)
    return Built(name, desc, config, diff_ids, tuple(tars))


BASE = {"bin/sh": b"#!busybox\n", "etc/os-release": b"ID=test\n"}


@pytest.fixture
def source(tmp_path: Path) -> ImageStore:
    store = ImageStore(tmp_path / "source")
    add_image(store, BUSYBOX, [BASE, {"etc/motd": b"hello\n"}])
    return store


@pytest.fixture
def dest(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "dest")


def manifest_of(store: ImageStore, name: str) -> ImageManifest:
    image = store.image(name)
    assert image is not None
    parsed = media.parse(store.read_blob(image.manifest.digest), image.manifest.media_type)
    assert isinstance(parsed, ImageManifest)
    return parsed


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: (tar.extractfile(m) or io.BytesIO()).read()
                for m in tar.getmembers() if m.isfile()}


# -- round trips ----------------------------------------------------------------------


def test_oci_round_trip_keeps_references_and_digests(source: ImageStore, dest: ImageStore,
                                                      tmp_path: Path) -> None:
    add_image(source, APP, [BASE, {"app": b"v1"}], how="zstd", cmd="app")
    add_image(source, "quay.example/org/tool:2", [{"tool": b"x"}], docker_types=True)
    out = tmp_path / "images.tar"
    save(source, ["busybox", APP, "quay.example/org/tool:2"], out, format="oci")
    assert sorted(load(dest, out)) == sorted([BUSYBOX, APP, "quay.example/org/tool:2"])
    assert dest.images() == source.images()
    for image in source.images():
        manifest = manifest_of(source, image.name)
        for blob in (image.manifest, manifest.config, *manifest.layers):
            assert dest.read_blob(blob.digest) == source.read_blob(blob.digest)


def test_oci_round_trip_keeps_the_index_a_tag_resolved_to(source: ImageStore, dest: ImageStore,
                                                          tmp_path: Path) -> None:
    image = source.image(BUSYBOX)
    assert image is not None
    host = media.host()
    index = json.dumps({"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": [
        {**image.manifest.to_json(),
         "platform": {"os": "linux", "architecture": host.architecture}}]}).encode()
    source.add_blob(index, sha(index))
    source.set_image(BUSYBOX, image.manifest, sha(index))
    out = tmp_path / "images.tar"
    save(source, [BUSYBOX], out, format="oci")
    load(dest, out)
    assert dest.image(BUSYBOX) == source.image(BUSYBOX)
    loaded = dest.image(BUSYBOX)
    assert loaded is not None
    assert loaded.resolved == sha(index)
    assert dest.read_blob(sha(index)) == index


def test_docker_round_trip_keeps_configs_and_diff_ids(source: ImageStore, dest: ImageStore,
                                                      tmp_path: Path) -> None:
    add_image(source, APP, [BASE, {"app": b"v1"}], how="zstd", cmd="app")
    out = tmp_path / "images.tar"
    save(source, [BUSYBOX, APP], out)
    assert sorted(load(dest, out)) == sorted([BUSYBOX, APP])
    for name in (BUSYBOX, APP):
        before, after = manifest_of(source, name), manifest_of(dest, name)
        assert after.config.digest == before.config.digest
        config = parse_config(dest.read_blob(after.config.digest))
        assert config == parse_config(source.read_blob(before.config.digest))
        # the layers now are the uncompressed tars the diff_ids hash
        assert [layer.digest for layer in after.layers] == list(config.diff_ids)
        for layer in after.layers:
            assert layer.media_type == "application/vnd.oci.image.layer.v1.tar"
            assert sha(dest.blob_path(layer.digest).read_bytes()) == layer.digest
    # unpacked as a pull leaves them, so the Image resource sees the image complete
    assert (dest.layer_dir(manifest_of(dest, APP).layers[1].digest) / "app").read_bytes() == b"v1"
    image = dest.image(BUSYBOX)
    assert image is not None
    assert is_complete(dest, image)


def test_load_without_unpacking_leaves_the_layers_packed(source: ImageStore, dest: ImageStore,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "images.tar"
    save(source, [BUSYBOX], out, format="oci")
    load(dest, out, unpack=False)
    image = dest.image(BUSYBOX)
    assert image is not None
    assert is_complete(dest, image, unpacked=False)
    assert not is_complete(dest, image)


def test_a_layer_that_would_escape_moves_no_reference(source: ImageStore, dest: ImageStore,
                                                      tmp_path: Path) -> None:
    add_image(source, APP, [BASE, {"../escaped": b"out"}])
    out = tmp_path / "images.tar"
    save(source, [APP], out, format="oci")
    with pytest.raises(UnsafeLayer):
        load(dest, out)
    assert dest.images() == []
    assert not (dest.root / "layers" / "escaped").exists()


def test_docker_archive_is_what_docker_v25_writes(source: ImageStore, tmp_path: Path) -> None:
    built = add_image(source, APP, [BASE, {"app": b"v1"}], how="zstd", cmd="app")
    out = tmp_path / "images.tar"
    save(source, [APP, BUSYBOX], out)
    files = members(out)
    entry, other = json.loads(files["manifest.json"])  # in the order asked for
    assert other["RepoTags"] == ["busybox:latest"]
    assert entry["RepoTags"] == ["registry.example:5000/team/app:1.0"]
    assert entry["Config"] == f"blobs/sha256/{hexof(sha(built.config))}"
    assert entry["Layers"] == [f"blobs/sha256/{hexof(d)}" for d in built.diff_ids]
    for path, tar in zip(entry["Layers"], built.layers, strict=True):
        assert files[path] == tar  # decompressed from zstd, byte for byte
    assert files[entry["Config"]] == built.config
    sources = entry["LayerSources"]
    assert sources[built.diff_ids[1]] == {"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                          "size": len(built.layers[1]),
                                          "digest": built.diff_ids[1]}
    # the shared base layer is written once
    with tarfile.open(out) as archive:
        names = [m.name for m in archive.getmembers()]
    assert names.count(f"blobs/sha256/{hexof(built.diff_ids[0])}") == 1
    assert json.loads(files["oci-layout"])["imageLayoutVersion"] == "1.0.0"
    assert json.loads(files["repositories"]).keys() == {"busybox", "registry.example:5000/team/app"}
    index = json.loads(files["index.json"])
    notes = {d["annotations"]["io.containerd.image.name"]: d for d in index["manifests"]}
    assert notes.keys() == {BUSYBOX, APP}
    assert notes[APP]["annotations"]["org.opencontainers.image.ref.name"] == "1.0"
    manifest = json.loads(files[f"blobs/sha256/{hexof(notes[APP]['digest'])}"])
    assert manifest["config"]["digest"] == sha(built.config)
    assert [layer["digest"] for layer in manifest["layers"]] == list(built.diff_ids)


def test_docker_load_keeps_the_manifest_of_the_archive_layout(
        source: ImageStore, dest: ImageStore, tmp_path: Path) -> None:
    out = tmp_path / "images.tar"
    save(source, [BUSYBOX], out)
    (entry,) = json.loads(members(out)["index.json"])["manifests"]
    load(dest, out)
    loaded = dest.image(BUSYBOX)
    assert loaded is not None
    assert loaded.manifest.digest == entry["digest"]


def test_save_is_reproducible_and_loading_twice_changes_nothing(
        source: ImageStore, dest: ImageStore, tmp_path: Path) -> None:
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    save(source, [BUSYBOX], first)
    save(source, [BUSYBOX], second)
    assert first.read_bytes() == second.read_bytes()
    load(dest, first)
    index = (dest.root / "index.json").read_bytes()
    assert load(dest, first) == [BUSYBOX]
    assert (dest.root / "index.json").read_bytes() == index


def test_a_gzipped_docker_archive_loads(source: ImageStore, dest: ImageStore,
                                        tmp_path: Path) -> None:
    out = tmp_path / "images.tar"
    save(source, [BUSYBOX], out)
    zipped = tmp_path / "images.tar.gz"
    zipped.write_bytes(gzip.compress(out.read_bytes()))
    assert load(dest, zipped) == [BUSYBOX]


def tar_of(path: Path, entries: Entries) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_entry(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def link_entry(name: str, target: str, kind: bytes = tarfile.SYMTYPE
               ) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def old_style_archive(path: Path, built: Built, tag: str) -> Path:
    """What docker before v25 (and skopeo, with <hex>.tar) wrote: no OCI layout."""
    entries: Entries = [file_entry(f"{hexof(sha(built.config))}.json", built.config)]
    layer_paths = []
    for number, tar in enumerate(built.layers):
        v1 = hashlib.sha256(f"v1-{number}".encode()).hexdigest()
        entries += [file_entry(f"{v1}/VERSION", b"1.0"), file_entry(f"{v1}/json", b"{}"),
                    file_entry(f"{v1}/layer.tar", tar)]
        layer_paths.append(f"{v1}/layer.tar")
    # skopeo adds legacy dirs of symlinks; never read, they must not matter
    entries.append(link_entry("legacy/layer.tar", "../" + layer_paths[0]))
    manifest = [{"Config": f"{hexof(sha(built.config))}.json", "RepoTags": [tag],
                 "Layers": layer_paths}]
    entries.append(file_entry("manifest.json", json.dumps(manifest).encode()))
    entries.append(file_entry("repositories", b"{}"))
    return tar_of(path, entries)


def test_an_old_style_docker_archive_loads(source: ImageStore, dest: ImageStore,
                                           tmp_path: Path) -> None:
    built = add_image(source, APP, [BASE, {"app": b"v2"}])
    archive = old_style_archive(tmp_path / "old.tar", built, "registry.example:5000/team/app:1.0")
    assert load(dest, archive) == [APP]
    manifest = manifest_of(dest, APP)
    assert manifest.config.digest == sha(built.config)
    assert [layer.digest for layer in manifest.layers] == list(built.diff_ids)
    assert {layer.media_type for layer in manifest.layers} == {
        "application/vnd.oci.image.layer.v1.tar"}


def test_a_layer_two_images_share_may_be_a_symlink(source: ImageStore, dest: ImageStore,
                                                   tmp_path: Path) -> None:
    """`docker save base derived` from docker before v25 (Debian 12's 20.10) links the
    second copy of a shared layer: ``<id>/layer.tar -> ../<other id>/layer.tar``."""
    base = add_image(source, "docker.io/library/base:1", [BASE])
    derived = add_image(source, APP, [BASE, {"app": b"v3"}])
    archive = old_style_archive(tmp_path / "one.tar", derived, APP)
    entries = entries_of(archive)
    manifest = docker_manifest(entries)
    layers = manifest[0]["Layers"]
    assert isinstance(layers, list)
    entries.append(file_entry(f"{hexof(sha(base.config))}.json", base.config))
    entries.append(link_entry("b" * 64 + "/layer.tar", f"../{layers[0]}"))
    manifest.append({"Config": f"{hexof(sha(base.config))}.json", "RepoTags": ["base:1"],
                     "Layers": ["b" * 64 + "/layer.tar"]})
    shared = tar_of(tmp_path / "shared.tar", set_manifest(entries, manifest))
    assert sorted(load(dest, shared)) == sorted([APP, "docker.io/library/base:1"])
    assert manifest_of(dest, "docker.io/library/base:1").config.digest == sha(base.config)


# -- expect ---------------------------------------------------------------------------


def test_expect_names_what_the_archive_holds_when_it_is_missing(
        source: ImageStore, dest: ImageStore, tmp_path: Path) -> None:
    out = tmp_path / "images.tar"
    save(source, [BUSYBOX], out)
    with pytest.raises(StoreError, match=r"does not hold alpine:3.19; it holds: busybox:latest"):
        load(dest, out, expect="alpine:3.19")
    assert dest.images() == []
    assert set(dest.blobs()) == set()


def test_expect_by_digest_also_sets_that_name(source: ImageStore, dest: ImageStore,
                                              tmp_path: Path) -> None:
    image = source.image(BUSYBOX)
    assert image is not None
    out = tmp_path / "images.tar"
    save(source, [BUSYBOX], out, format="oci")
    pinned = f"busybox@{image.manifest.digest}"
    names = load(dest, out, expect=pinned)
    assert names == [BUSYBOX, f"docker.io/library/{pinned}"]
    assert dest.image(f"docker.io/library/{pinned}") is not None


# -- refused archives -----------------------------------------------------------------


def entries_of(archive: Path) -> Entries:
    with tarfile.open(archive) as tar:
        return [(m, (tar.extractfile(m) or io.BytesIO()).read() if m.isfile() else None)
                for m in tar.getmembers()]


def replace_member(entries: Entries, name: str, data: bytes, new_name: str | None = None
                   ) -> Entries:
    out: Entries = []
    for info, old in entries:
        if info.name == name:
            out.append(file_entry(new_name or name, data))
        else:
            out.append((info, old))
    return out


def docker_manifest(entries: Entries) -> list[dict[str, object]]:
    data = next(d for i, d in entries if i.name == "manifest.json")
    assert data is not None
    loaded: list[dict[str, object]] = json.loads(data)
    return loaded


def set_manifest(entries: Entries, manifest: list[dict[str, object]]) -> Entries:
    return replace_member(entries, "manifest.json", json.dumps(manifest).encode())


def first_layer(entries: Entries) -> str:
    layers = docker_manifest(entries)[0]["Layers"]
    assert isinstance(layers, list)
    return str(layers[0])


def flip_layer_byte(entries: Entries) -> Entries:
    name = first_layer(entries)
    data = bytearray(next(d for i, d in entries if i.name == name) or b"")
    data[600] ^= 0x01
    return replace_member(entries, name, bytes(data))


def misname_config(entries: Entries) -> Entries:
    manifest = docker_manifest(entries)
    config = str(manifest[0]["Config"])
    data = next(d for i, d in entries if i.name == config) or b""
    wrong = "blobs/sha256/" + hashlib.sha256(b"something else").hexdigest()
    manifest[0]["Config"] = wrong
    return set_manifest(replace_member(entries, config, data, wrong), manifest)


def mismatch_diff_ids(entries: Entries) -> Entries:
    manifest = docker_manifest(entries)
    config_name = str(manifest[0]["Config"])
    config = json.loads(next(d for i, d in entries if i.name == config_name) or b"")
    config["rootfs"]["diff_ids"][0] = sha(b"another layer")
    body = json.dumps(config).encode()
    renamed = f"blobs/sha256/{hexof(sha(body))}"
    manifest[0]["Config"] = renamed
    return set_manifest(replace_member(entries, config_name, body, renamed), manifest)


def escape_path(entries: Entries) -> Entries:
    manifest = docker_manifest(entries)
    layers = manifest[0]["Layers"]
    assert isinstance(layers, list)
    layers[0] = "../../etc/passwd"
    return set_manifest(entries, manifest)


def absolute_config(entries: Entries) -> Entries:
    manifest = docker_manifest(entries)
    manifest[0]["Config"] = "/etc/passwd"
    return set_manifest(entries, manifest)


def symlinked_layer(target: str) -> Callable[[Entries], Entries]:
    def change(entries: Entries) -> Entries:
        name = first_layer(entries)
        return [link_entry(name, target) if i.name == name else (i, d) for i, d in entries]
    return change


def symlink_loop(entries: Entries) -> Entries:
    name = first_layer(entries)
    return [*symlinked_layer("../../loop")(entries), link_entry("loop", name)]


def hardlinked_layer(entries: Entries) -> Entries:
    name = first_layer(entries)
    return [link_entry(name, "etc/passwd", tarfile.LNKTYPE) if i.name == name else (i, d)
            for i, d in entries]


def duplicate_layer(entries: Entries) -> Entries:
    return [*entries, file_entry(first_layer(entries), b"not the layer")]


def oversize_manifest(entries: Entries) -> Entries:
    body = json.dumps(docker_manifest(entries)).encode()
    return replace_member(entries, "manifest.json", body + b" " * (media.MAX_MANIFEST + 1))


TAMPERS: dict[str, tuple[Callable[[Entries], Entries], type[Exception]]] = {
    "flipped byte in a layer": (flip_layer_byte, DigestMismatch),
    "blob under a wrong digest name": (misname_config, DigestMismatch),
    "config diff_ids not the layers": (mismatch_diff_ids, DigestMismatch),
    "manifest.json names ../../etc/passwd": (escape_path, UnsafeLayer),
    "manifest.json names /etc/passwd": (absolute_config, UnsafeLayer),
    "symlink named like a blob, to /etc/passwd": (symlinked_layer("/etc/passwd"), UnsafeLayer),
    "symlink named like a blob, out of the archive": (symlinked_layer("../../../etc/passwd"),
                                                      UnsafeLayer),
    "symlink named like a blob, to another member": (symlinked_layer("../../manifest.json"),
                                                     DigestMismatch),
    "symlink to nothing": (symlinked_layer("../sha256/../sha256/" + "0" * 64), StoreError),
    "symlink loop": (symlink_loop, UnsafeLayer),
    "hard link named like a blob": (hardlinked_layer, UnsafeLayer),
    "a blob name twice": (duplicate_layer, UnsafeLayer),
    "over-size manifest.json": (oversize_manifest, SizeMismatch),
}


def state(store: ImageStore) -> tuple[bytes | None, set[str], list[str]]:
    index = store.root / "index.json"
    ingest = store.root / "ingest"
    return (index.read_bytes() if index.exists() else None, set(store.blobs()),
            sorted(p.name for p in ingest.iterdir()) if ingest.is_dir() else [])


@pytest.mark.parametrize("tamper", TAMPERS, ids=list(TAMPERS))
def test_a_tampered_docker_archive_admits_nothing(tamper: str, source: ImageStore,
                                                  dest: ImageStore, tmp_path: Path) -> None:
    add_image(dest, "docker.io/library/other:1", [{"x": b"y"}])  # the store is not empty
    before = state(dest)
    out = tmp_path / "images.tar"
    save(source, [BUSYBOX], out)
    change, error = TAMPERS[tamper]
    bad = tar_of(tmp_path / "bad.tar", change(entries_of(out)))
    with pytest.raises(error):
        load(dest, bad)
    assert state(dest) == before


def test_a_flipped_byte_in_an_oci_layer_is_a_digest_mismatch(
        source: ImageStore, dest: ImageStore, tmp_path: Path) -> None:
    out = tmp_path / "images.tar"
    save(source, [BUSYBOX], out, format="oci")
    layer = manifest_of(source, BUSYBOX).layers[1]
    entries = entries_of(out)
    name = f"blobs/sha256/{hexof(layer.digest)}"
    data = bytearray(next(d for i, d in entries if i.name == name) or b"")
    data[len(data) // 2] ^= 0x40
    bad = tar_of(tmp_path / "bad.tar", replace_member(entries, name, bytes(data)))
    with pytest.raises(DigestMismatch):
        load(dest, bad)
    assert state(dest) == (None, set(), [])


def test_an_oci_descriptor_with_a_wrong_size_is_refused(
        source: ImageStore, dest: ImageStore, tmp_path: Path) -> None:
    out = tmp_path / "images.tar"
    save(source, [BUSYBOX], out, format="oci")
    entries = entries_of(out)
    index = json.loads(next(d for i, d in entries if i.name == "index.json") or b"")
    index["manifests"][0]["size"] += 1
    bad = tar_of(tmp_path / "bad.tar",
                 replace_member(entries, "index.json", json.dumps(index).encode()))
    with pytest.raises(SizeMismatch):
        load(dest, bad)
    assert state(dest) == (None, set(), [])


def test_damaged_and_foreign_files_are_refused(source: ImageStore, dest: ImageStore,
                                               tmp_path: Path) -> None:
    out = tmp_path / "images.tar"
    save(source, [BUSYBOX], out)
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    not_tar = tmp_path / "notes.txt"
    not_tar.write_bytes(b"hello " * 200)
    plain = tar_of(tmp_path / "plain.tar", [file_entry("hello.txt", b"hi")])
    for bad in (truncated, not_tar, plain):
        with pytest.raises(StoreError):
            load(dest, bad)
    assert state(dest) == (None, set(), [])


def test_a_huge_extended_header_is_refused_unread(source: ImageStore, dest: ImageStore,
                                                  tmp_path: Path) -> None:
    out = tmp_path / "images.tar"
    save(source, [BUSYBOX], out)
    entries = entries_of(out)
    bad = tmp_path / "pax.tar"
    with tarfile.open(bad, "w", format=tarfile.PAX_FORMAT) as tar:
        info, data = entries[0]
        info.pax_headers = {"comment": "x" * (2 << 20)}
        tar.addfile(info, io.BytesIO(data) if data is not None else None)
        for info, data in entries[1:]:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    with pytest.raises(StoreError, match="extended tar header"):
        load(dest, bad)
    assert state(dest) == (None, set(), [])


def test_an_archive_that_names_no_image_is_refused(source: ImageStore, dest: ImageStore,
                                                   tmp_path: Path) -> None:
    out = tmp_path / "images.tar"
    save(source, [BUSYBOX], out)
    entries = entries_of(out)
    manifest = docker_manifest(entries)
    manifest[0]["RepoTags"] = None
    with pytest.raises(StoreError, match="names no image"):
        load(dest, tar_of(tmp_path / "unnamed.tar", set_manifest(entries, manifest)))


# -- save failures --------------------------------------------------------------------


def test_a_failed_save_leaves_the_old_archive_and_no_temp(source: ImageStore,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "images.tar"
    out.write_bytes(b"previous archive")
    with pytest.raises(StoreError, match="no image"):
        save(source, ["alpine"], out)
    layer = manifest_of(source, BUSYBOX).layers[0]
    path = source.blob_path(layer.digest)
    damaged = bytearray(path.read_bytes())
    damaged[-20] ^= 0x01  # inside the gzip trailer: the CRC no longer matches
    path.write_bytes(bytes(damaged))
    formats: tuple[Format, ...] = ("docker", "oci")
    for format in formats:
        with pytest.raises((DigestMismatch, UnsafeLayer)):
            save(source, [BUSYBOX], out, format=format)
    assert out.read_bytes() == b"previous archive"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images.tar", "source"]
