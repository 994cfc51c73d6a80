"""The Image resource end to end: `pyprov apply` of manifests pulls into the agent's store,
through the mirrors the same manifests put in daemon.json (the seeds' accelerator, for
docker.io, offline: the mirror is a pull-through cache of a local registry); a second
apply changes nothing; check mode reports a stale image without pulling; the image
commands see what the reconciler pulled.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import RunPyprov, write_manifest
from tests.registry.contents import TestImages
from tests.registry.server import Registry

pytest_plugins = ["tests.registry.fixtures"]


@pytest.fixture(scope="module")
def hub_busybox(registry: Registry) -> str:
    """``library/busybox:latest`` in the local registry: what docker.io would serve."""
    subprocess.run(["skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                    f"docker://{registry.host}/busybox:oci",
                    f"docker://{registry.host}/library/busybox:latest"],
                   check=True, capture_output=True, timeout=120)
    return f"{registry.host}/library/busybox:latest"


def manifests(directory: Path, daemon_json: Path, mirror: str, image: str,
              pull: str = "if-not-present") -> Path:
    write_manifest(directory, "daemon.yml", f"""\
kind: DaemonConfig
name: docker
path: {daemon_json}
settings:
  registry-mirrors: ["{mirror}"]
""")
    write_manifest(directory, "images.yml", f"""\
kind: Image
name: {image}
pull: {pull}
""")
    return directory


def events(stdout: str) -> dict[str, dict[str, object]]:
    report = json.loads(stdout)
    return {f"{e['kind']}/{e['name']}": e for e in report["hosts"]["localhost"]["events"]}


@pytest.mark.usefixtures("hub_busybox")
def test_apply_pulls_docker_hub_images_through_the_mirror_offline(
        pyprov: RunPyprov, mirror_registry: Registry, registry_images: TestImages,
        tmp_path: Path, state_dir: Path) -> None:
    path = manifests(tmp_path / "m", tmp_path / "daemon.json", mirror_registry.url, "busybox")
    first = pyprov("apply", str(path), "--output", "json")
    assert first.code == 2, first.stdout + first.stderr
    pulled = events(first.stdout)["Image/busybox"]
    assert pulled["changed"] is True
    assert pulled["details"]["manifest"] == registry_images.busybox_oci.digest
    assert "/v2/library/busybox/manifests/latest" in mirror_registry.log_text()
    again = pyprov("apply", str(path), "--output", "json")
    assert again.code == 0, again.stdout + again.stderr
    listing = pyprov("images")
    assert listing.code == 0, listing.stderr
    assert listing.stdout.splitlines()[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID",
                                                      "CREATED", "SIZE"]
    assert listing.stdout.splitlines()[1].split()[:2] == ["busybox", "latest"]
    verify = pyprov("images", "--verify")
    assert verify.code == 0, verify.stdout
    layers = state_dir / "images" / "layers" / "sha256"
    assert len(list(layers.iterdir())) == len(registry_images.busybox_oci.layers)


def copy(source: str, target: str) -> None:
    subprocess.run(["skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                    f"docker://{source}", f"docker://{target}"],
                   check=True, capture_output=True, timeout=120)


def test_check_reports_a_stale_image_without_pulling(
        pyprov: RunPyprov, registry: Registry, scratch_registry: Registry, tmp_path: Path,
        state_dir: Path) -> None:
    name = f"{scratch_registry.host}/app:1"
    copy(f"{registry.host}/busybox:oci", name)
    path = manifests(tmp_path / "m", tmp_path / "daemon.json", registry.url, name,
                     pull="always")
    assert pyprov("apply", str(path)).code == 2
    assert pyprov("apply", str(path)).code == 0  # HEAD: same digest, nothing downloaded
    copy(f"{registry.host}/busybox:docker", name)  # the tag moves upstream
    index = (state_dir / "images" / "index.json").read_bytes()
    check = pyprov("check", str(path), "--output", "json")
    assert check.code == 2, check.stdout  # drift
    stale = events(check.stdout)[f"Image/{name}"]
    assert stale["action"] == "update"
    assert "digest" in stale["changes"][0]
    assert (state_dir / "images" / "index.json").read_bytes() == index  # nothing pulled
    assert pyprov("apply", str(path)).code == 2
    assert pyprov("apply", str(path)).code == 0


def test_pull_never_on_an_absent_image_fails_clearly(pyprov: RunPyprov, registry: Registry,
                                                     tmp_path: Path) -> None:
    path = manifests(tmp_path / "m", tmp_path / "daemon.json", registry.url,
                     f"{registry.host}/busybox:oci", pull="never")
    result = pyprov("apply", str(path), "--output", "json")
    assert result.code == 6, result.stdout  # daemon.json written (2), the image failed (4)
    failed = events(result.stdout)[f"Image/{registry.host}/busybox:oci"]
    assert "pull is 'never'" in str(failed["error"])


def test_cli_pull_tag_push_and_catalog(pyprov: RunPyprov, registry: Registry,
                                       scratch_registry: Registry) -> None:
    source = f"{registry.host}/busybox:zstd"
    pulled = pyprov("pull", source)
    assert pulled.code == 0, pulled.stderr
    assert pulled.stdout.splitlines()[-1] == source
    assert "Status: Downloaded newer image" in pulled.stdout
    again = pyprov("pull", source)
    assert "Status: Image is up to date" in again.stdout
    target = f"{scratch_registry.host}/centos:7"  # the seeds' `docker tag` + `docker push`
    assert pyprov("tag", source, target).code == 0
    pushed = pyprov("push", target)
    assert pushed.code == 0, pushed.stderr
    assert "digest: sha256:" in pushed.stdout
    catalog = pyprov("catalog", scratch_registry.host, "--tags")
    assert catalog.stdout.strip() == "centos: 7"
    inspect = json.loads(pyprov("inspect", target).stdout)
    assert inspect["Config"]["rootfs"]["type"] == "layers"
    removed = pyprov("rmi", target, source)
    assert removed.code == 0, removed.stderr
    assert "Untagged: " in removed.stdout
    assert "Deleted: sha256:" in removed.stdout
    assert pyprov("images").stdout.count("\n") == 1  # the header only


def test_an_image_from_an_archive_on_the_host(pyprov: RunPyprov, registry: Registry,
                                              tmp_path: Path, state_dir: Path) -> None:
    """Air-gapped hosts: `pyprov save` somewhere, the archive on the host, `archive:`."""
    source = f"{registry.host}/busybox:docker"
    assert pyprov("pull", "-q", source).code == 0
    archive = tmp_path / "busybox.tar"
    assert pyprov("save", "-o", str(archive), source).code == 0
    assert pyprov("rmi", source).code == 0
    path = tmp_path / "m"
    write_manifest(path, "images.yml", f"""\
kind: Image
name: {source}
archive: {archive}
pull: never
""")
    loaded = pyprov("apply", str(path), "--output", "json")
    assert loaded.code == 2, loaded.stdout + loaded.stderr
    assert pyprov("apply", str(path)).code == 0
    assert pyprov("images", "--verify").code == 0
    assert (state_dir / "images" / "index.json").exists()
