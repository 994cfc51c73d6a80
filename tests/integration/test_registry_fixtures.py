"""The registry fixtures themselves, proven against independent peers (skopeo, http.client).

If these fail, every registry test built on the fixtures would prove nothing: the images
must be what skopeo reads back byte for byte, the auth variants must refuse and accept
as a real registry does, and the hostile behaviours must break connections as advertised.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry import (
    Image,
    ImageIndex,
    PushError,
    RawClient,
    Registry,
    busybox_image,
    multi_platform_index,
    parse_challenge,
    push,
    write_docker_archive,
    write_oci_layout,
)
from tests.registry.contents import USERS, TestImages
from tests.registry.hostile import (
    HostileRegistry,
    blob,
    fail_then,
    ranged,
    redirect,
    reset_mid_body,
    stall_after_headers,
    truncated,
    wrong_digest,
)
from tests.registry.images import busybox_base_entries, make_layer, tar_bytes

pytest_plugins = ["tests.registry.fixtures"]

REFERENCES = ["busybox:docker", "busybox:oci", "busybox:zstd", "multi:latest", "multi:list"]
ALICE = ("alice", USERS["alice"])
BOB = ("bob", USERS["bob"])


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run skopeo (a missing skopeo fails the test: it is the peer these tests need)."""
    if shutil.which("skopeo") is None:
        pytest.fail("skopeo is missing: apt-get install skopeo", pytrace=False)
    done = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True,
                          text=True, timeout=120, check=False)
    if check:
        assert done.returncode == 0, f"skopeo {' '.join(args)}: exit {done.returncode}\n" \
                                     f"{done.stderr}"
    return done


@contextlib.contextmanager
def _get(host: str, path: str, headers: dict[str, str] | None = None,
         timeout: float = 5) -> Iterator[http.client.HTTPResponse]:
    """One plain GET: no retries, no auth dance, every fault visible."""
    connection = http.client.HTTPConnection(host, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        yield connection.getresponse()
    finally:
        connection.close()


def _status(host: str, path: str) -> int:
    with _get(host, path) as answer:
        answer.read()
        return answer.status


def _sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


# ---------------------------------------------------------------------- images


def test_images_are_deterministic() -> None:
    entries = busybox_base_entries()
    assert tar_bytes(entries) == tar_bytes(list(reversed(entries)))
    assert make_layer(entries).blob.digest == busybox_image("oci").layers[0].blob.digest


def test_flavours_share_content_but_not_media_types(registry_images: TestImages) -> None:
    docker, oci, zstd = (registry_images.busybox_docker, registry_images.busybox_oci,
                         registry_images.busybox_zstd)
    assert docker.diff_ids == oci.diff_ids == zstd.diff_ids
    assert docker.layers[0].blob.digest == oci.layers[0].blob.digest
    assert zstd.layers[0].blob.digest != oci.layers[0].blob.digest
    assert docker.manifest.json()["layers"][0]["mediaType"].startswith("application/vnd.docker")
    assert zstd.manifest.json()["layers"][0]["mediaType"].endswith("tar+zstd")
    config = oci.config.json()["config"]
    assert {"Entrypoint", "Cmd", "Env", "WorkingDir", "ExposedPorts", "User",
            "StopSignal"} <= set(config)


def test_busybox_layers_hold_what_the_docs_say(registry_images: TestImages) -> None:
    base, app = registry_images.busybox_oci.layers
    with base.open_tar() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        members = {m.name: m for m in tar}
    assert members["bin/sh"].issym()
    assert members["bin/sh"].linkname == "busybox"
    assert members["bin/echo"].islnk()
    assert members["var/www"].uid == 33
    assert {"etc/.wh.issue", "opt/docs/.wh..wh..opq"} <= set(app.paths)
    assert "etc/issue" in base.paths


def test_platform_children_differ(registry_images: TestImages) -> None:
    for index in (registry_images.multi_index, registry_images.multi_list):
        platforms = [entry["platform"] for entry in index.manifest.json()["manifests"]]
        assert {"architecture": "arm", "os": "linux", "variant": "v7"} in platforms
        assert len({image.layers[1].blob.digest for image in index.images}) == 3


# ---------------------------------------------------------------------- plain registry


def test_catalog_lists_the_pushed_repositories(registry: Registry) -> None:
    answer = RawClient.of(registry).get("/v2/_catalog")
    assert answer.status == 200
    # The registry is shared by the session: other tests may add repositories to it.
    assert {"busybox", "multi"} <= set(answer.json()["repositories"])


@pytest.mark.parametrize("reference", REFERENCES)
def test_skopeo_reads_back_the_pushed_manifest_bytes(
        registry: Registry, registry_images: TestImages, reference: str) -> None:
    image = registry_images.by_reference()[reference]
    raw = skopeo("inspect", "--raw", "--tls-verify=false",
                 f"docker://{registry.host}/{reference}").stdout
    assert raw.encode() == image.manifest.read()
    assert _sha256(raw.encode()) == image.digest


@pytest.mark.parametrize("reference", REFERENCES)
def test_skopeo_copies_each_image_verifying_digests(
        registry: Registry, registry_images: TestImages, reference: str,
        tmp_path: Path) -> None:
    image = registry_images.by_reference()[reference]
    every = ["--all"] if isinstance(image, ImageIndex) else []
    skopeo("copy", *every, "--src-tls-verify=false",
           f"docker://{registry.host}/{reference}", f"oci:{tmp_path}/copy:it")
    index = json.loads((tmp_path / "copy" / "index.json").read_text())
    assert len(index["manifests"]) == 1


def test_registry_keeps_its_storage_across_restarts(scratch_registry: Registry) -> None:
    push(scratch_registry, "again", "v1", busybox_image("oci"))
    old_pid = scratch_registry.pid
    scratch_registry.stop()
    assert not scratch_registry.running
    scratch_registry.start()
    assert scratch_registry.pid != old_pid
    answer = RawClient.of(scratch_registry).get("/v2/again/tags/list")
    assert answer.json() == {"name": "again", "tags": ["v1"]}


def test_closed_registry_leaves_nothing() -> None:
    registry = Registry(name="short-lived").start()
    pid, directory = registry.pid, registry.directory
    registry.close()
    assert pid is not None
    assert directory is not None
    assert not Path(f"/proc/{pid}").exists() or "docker-registry" not in \
        Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    assert not directory.exists()


# ---------------------------------------------------------------------- auth variants


def test_htpasswd_registry_refuses_anonymous_and_accepts_users(auth_registry: Registry) -> None:
    anonymous = RawClient.of(auth_registry).get("/v2/")
    assert anonymous.status == 401
    assert parse_challenge(anonymous.header("WWW-Authenticate") or "")[0] == "basic"
    assert RawClient.of(auth_registry, ("alice", "wrong")).get("/v2/").status == 401
    assert RawClient.of(auth_registry, ALICE).get("/v2/").status == 200
    skopeo("inspect", "--raw", "--tls-verify=false", "--creds", "bob:" + BOB[1],
           f"docker://{auth_registry.host}/busybox:oci")


def test_token_registry_challenges_with_its_token_server(token_registry: Registry) -> None:
    token_server = token_registry.token_server
    assert token_server is not None
    with _get(token_registry.host, "/v2/") as answer:  # no client that would fetch a token
        assert answer.status == 401
        scheme, params = parse_challenge(answer.getheader("WWW-Authenticate") or "")
    assert (scheme, params["realm"]) == ("bearer", token_server.realm)
    assert params["realm"].startswith("http://127.0.0.2:")
    token_server.clear_requests()
    alice = RawClient.of(token_registry, ALICE)
    manifest = alice.get("/v2/busybox/manifests/oci", busybox_image("oci").media_type)
    assert manifest.status == 200
    asked = token_server.requests
    assert [r.query["scope"] for r in asked] == [["repository:busybox:pull"]]
    assert asked[0].authorization == "Basic " + base64.b64encode(b"alice:wonderland").decode()


def test_token_grants_decide_what_each_user_may_do(token_registry: Registry) -> None:
    reference = "/v2/busybox/manifests/oci"
    assert RawClient.of(token_registry).get(reference).status == 401  # anonymous: no access
    bob = RawClient.of(token_registry, BOB)
    assert bob.get(reference, busybox_image("oci").media_type).status == 200
    refused = bob.request("POST", "/v2/busybox/blobs/uploads/", headers={"Content-Length": "0"})
    assert refused.status == 401
    with pytest.raises(PushError, match="HTTP 401"):  # the realm refuses a wrong password
        RawClient.of(token_registry, ("bob", "wrong")).get(reference)
    skopeo("inspect", "--raw", "--tls-verify=false", "--creds", f"alice:{ALICE[1]}",
           f"docker://{token_registry.host}/busybox:oci")


def test_tls_registry_serves_https_with_its_own_ca(tls_registry: Registry,
                                                   tmp_path: Path) -> None:
    assert tls_registry.url.startswith("https://")
    assert tls_registry.ca_path is not None
    assert RawClient.of(tls_registry).get("/v2/").status == 200
    with pytest.raises(ssl.SSLCertVerificationError):
        RawClient(tls_registry.url).get("/v2/")
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(tls_registry.ca_path, certs / "ca.crt")
    skopeo("inspect", "--raw", "--cert-dir", str(certs),
           f"docker://{tls_registry.host}/busybox:oci")
    skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{tls_registry.host}/busybox:oci")


# ---------------------------------------------------------------------- mirror


def test_mirror_serves_images_fetched_from_upstream(
        mirror_registry: Registry, registry_images: TestImages, tmp_path: Path) -> None:
    source = f"docker://{mirror_registry.host}/busybox:docker"
    raw = skopeo("inspect", "--raw", "--tls-verify=false", source).stdout
    assert raw.encode() == registry_images.busybox_docker.manifest.read()
    skopeo("copy", "--src-tls-verify=false", source, f"oci:{tmp_path}/copy:it")
    assert mirror_registry.upstream is not None
    assert "/v2/busybox/manifests/docker" in mirror_registry.upstream.log_text()


def test_mirror_passes_its_credentials_to_the_upstream_realm(
        token_registry: Registry, registry_images: TestImages) -> None:
    token_server = token_registry.token_server
    assert token_server is not None
    token_server.clear_requests()
    with Registry(upstream=token_registry, upstream_auth=BOB, name="auth-mirror") as mirror:
        answer = RawClient.of(mirror).get("/v2/busybox/manifests/oci",
                                          registry_images.busybox_oci.media_type)
    assert answer.status == 200
    assert answer.body == registry_images.busybox_oci.manifest.read()
    bob = "Basic " + base64.b64encode(f"bob:{BOB[1]}".encode()).decode()
    assert {r.authorization for r in token_server.requests} == {bob}


def test_mirror_of_an_htpasswd_upstream_with_credentials_is_refused(
        auth_registry: Registry) -> None:
    with pytest.raises(ValueError, match="token realms only"):
        Registry(upstream=auth_registry, upstream_auth=ALICE)


# ---------------------------------------------------------------------- archives


def test_skopeo_reads_the_docker_archive(registry_images: TestImages, tmp_path: Path) -> None:
    image = registry_images.busybox_docker
    archive = write_docker_archive(image, tmp_path / "busybox.tar", ["busybox:latest"])
    inspected = json.loads(skopeo("inspect", f"docker-archive:{archive}").stdout)
    assert inspected["Layers"] == list(image.diff_ids)
    config = json.loads(skopeo("inspect", "--config", f"docker-archive:{archive}").stdout)
    assert config["config"]["User"] == "www"
    skopeo("copy", f"docker-archive:{archive}", f"oci:{tmp_path}/copy:it")


@pytest.mark.parametrize("flavour", ["oci", "zstd", "index"])
def test_skopeo_reads_the_oci_layout(flavour: str, tmp_path: Path) -> None:
    image: Image | ImageIndex = (multi_platform_index("oci") if flavour == "index"
                                 else busybox_image("zstd" if flavour == "zstd" else "oci"))
    layout = write_oci_layout(image, tmp_path / "layout", ref_name="v1")
    raw = skopeo("inspect", "--raw", f"oci:{layout}:v1").stdout
    assert raw.encode() == image.manifest.read()
    every = ["--all"] if isinstance(image, ImageIndex) else []
    skopeo("copy", *every, f"oci:{layout}:v1", f"oci:{tmp_path}/copy:it")


# ---------------------------------------------------------------------- hostile


def test_hostile_serves_a_good_image_to_skopeo(hostile: HostileRegistry,
                                               tmp_path: Path) -> None:
    image = busybox_image("oci")
    hostile.serve_image("busybox", image, tag="latest")
    reference = f"docker://{hostile.host}/busybox:latest"
    assert skopeo("inspect", "--raw", "--tls-verify=false", reference).stdout.encode() == \
        image.manifest.read()
    skopeo("copy", "--src-tls-verify=false", reference, f"oci:{tmp_path}/good:it")
    layer = image.layers[0].blob
    hostile.route("GET", f"/v2/busybox/blobs/{layer.digest}",
                  wrong_digest(layer.read()[:-1] + b"!"))
    broken = skopeo("copy", "--src-tls-verify=false", reference, f"oci:{tmp_path}/bad:it",
                    check=False)
    assert broken.returncode != 0
    assert "digest" in broken.stderr.lower()


def test_hostile_fails_then_succeeds_and_records(hostile: HostileRegistry) -> None:
    hostile.route("GET", "/v2/x/blobs/sha256:.*", fail_then(blob(b"payload"), times=2))
    statuses = [_status(hostile.host, "/v2/x/blobs/sha256:1") for _ in range(3)]
    assert statuses == [500, 500, 200]
    seen = hostile.requests_to("/v2/x/blobs/.*")
    assert len(seen) == 3
    assert seen[0].client[0] == "127.0.0.1"


def test_hostile_breaks_bodies_as_advertised(hostile: HostileRegistry) -> None:
    data = bytes(range(256)) * 64
    hostile.route("GET", "/short", truncated(data, 1000))
    hostile.route("GET", "/reset", reset_mid_body(data, 1000))
    hostile.route("GET", "/stall", stall_after_headers(data))
    with _get(hostile.host, "/short") as short, pytest.raises(http.client.IncompleteRead):
        short.read()
    with _get(hostile.host, "/reset") as reset, \
            pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        reset.read()
    with _get(hostile.host, "/stall", timeout=0.3) as stalled:
        assert stalled.status == 200
        with pytest.raises(socket.timeout):
            stalled.read()


def test_hostile_ranges_resume_a_cut_blob(hostile: HostileRegistry) -> None:
    data = bytes(range(256)) * 64
    hostile.route("GET", "/blob", ranged(data, cut_first_after=5000))
    with _get(hostile.host, "/blob") as cut, \
            pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        cut.read()
    with _get(hostile.host, "/blob", {"Range": "bytes=5000-"}) as rest:
        assert rest.status == 206
        assert rest.getheader("Content-Range") == f"bytes 5000-{len(data) - 1}/{len(data)}"
        assert rest.read() == data[5000:]


def test_hostile_redirects_and_tokens_live_on_another_host(hostile: HostileRegistry) -> None:
    image = busybox_image("oci")
    hostile.serve_image("busybox", image)
    layer = image.layers[1].blob
    hostile.route("GET", "/elsewhere", blob(layer), on="other")
    hostile.route("GET", f"/v2/busybox/blobs/{layer.digest}",
                  redirect(f"{hostile.other_url}/elsewhere"))
    realm = hostile.require_token("sesame")
    client = RawClient(hostile.url, auth=ALICE)
    assert client.get(f"/v2/busybox/blobs/{layer.digest}").status == 307
    at_realm = hostile.requests_to("/token", listener="other")
    assert realm.startswith("http://127.0.0.2:")
    assert at_realm[0].authorization is not None
    assert hostile.requests_to("/v2/busybox/blobs/.*")[-1].authorization == "Bearer sesame"
    with _get(hostile.other_host, "/elsewhere") as followed:
        assert followed.read() == layer.read()
    assert hostile.requests_to("/elsewhere", listener="other")[0].authorization is None
