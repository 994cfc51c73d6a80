"""The one merge of image config and manifest (docker's rules) and the versioned hash."""

from __future__ import annotations

import pytest

from agent.model import Container
from agent.oci.config import ImageConfig
from agent.oci.media import Platform
from agent.runtime.spec import DEFAULT_PATH, SpecError, compose_spec, spec_hash

DIGEST = "sha256:" + "a" * 64
IMAGE = ImageConfig(platform=Platform("linux", "amd64"), diff_ids=(),
                    entrypoint=("/bin/httpd", "-f"), cmd=("-p", "80"),
                    env=("PATH=/bin", "A=image"), working_dir="/www", user="www",
                    volumes=("/data", "/cache/"), stop_signal="SIGINT",
                    labels={"from": "image", "tier": "x"})


def container(**fields: object) -> Container:
    return Container.model_validate({"kind": "Container", "name": "web", "image": "busybox",
                                     **fields})


def test_the_image_fills_what_the_manifest_leaves_open() -> None:
    spec = compose_spec(container(), IMAGE, DIGEST)
    assert spec.argv == ("/bin/httpd", "-f", "-p", "80")
    assert spec.env == ("PATH=/bin", "A=image")
    assert (spec.working_dir, spec.user, spec.stop_signal) == ("/www", "www", "SIGINT")
    assert spec.anonymous_volumes == ("/data", "/cache")  # normalized


@pytest.mark.parametrize(("fields", "argv"), [
    ({"command": ["-p", "8080"]}, ("/bin/httpd", "-f", "-p", "8080")),
    ({"entrypoint": ["/bin/sh"]}, ("/bin/sh",)),  # a new entrypoint drops the image's Cmd
    ({"entrypoint": ["/bin/sh"], "command": ["-c", "true"]}, ("/bin/sh", "-c", "true")),
    ({"command": "echo hello"}, ("/bin/httpd", "-f", "echo", "hello")),
])
def test_entrypoint_and_command_as_docker_run(fields: dict[str, object],
                                             argv: tuple[str, ...]) -> None:
    assert compose_spec(container(**fields), IMAGE, DIGEST).argv == argv


def test_environment_labels_volumes_and_user_merge() -> None:
    spec = compose_spec(container(environment={"A": "manifest", "B": "1", "PATH": None},
                                  labels={"tier": "web"}, user="0:0",
                                  volumes=["/srv/data:/data"]), IMAGE, DIGEST)
    assert spec.env == ("A=manifest", "B=1", f"PATH={DEFAULT_PATH}")  # removed: docker's
    assert dict(spec.labels) == {"from": "image", "tier": "web"}
    assert spec.user == "0:0"
    assert spec.anonymous_volumes == ("/cache",)  # /data is the manifest's bind mount


def test_no_command_anywhere_is_an_error() -> None:
    bare = ImageConfig(platform=Platform("linux", "amd64"), diff_ids=())
    with pytest.raises(SpecError, match="no command"):
        compose_spec(container(), bare, DIGEST)


def test_the_hash_moves_with_what_shapes_the_container_only() -> None:
    base = spec_hash(compose_spec(container(environment={"A": "1"}), IMAGE, DIGEST))
    assert base.startswith("v1:")
    assert spec_hash(compose_spec(container(environment={"A": "1"}), IMAGE, DIGEST)) == base
    assert spec_hash(compose_spec(container(environment={"A": "1"}, state="stopped"), IMAGE,
                                  DIGEST)) == base  # stopping is not recreating
    for changed in (compose_spec(container(environment={"A": "2"}), IMAGE, DIGEST),
                    compose_spec(container(environment={"A": "1"}), IMAGE, "sha256:" + "b" * 64),
                    compose_spec(container(environment={"A": "1"}, ports=["8080:80"]), IMAGE,
                                 DIGEST),
                    compose_spec(container(environment={"A": "1"}, mem_limit="64m"), IMAGE,
                                 DIGEST)):
        assert spec_hash(changed) != base
