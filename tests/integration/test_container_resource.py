"""The Container resource through ``pyprov apply``: created and started from a manifest,
left alone by a second apply and by unrelated edits, recreated when its environment or
its image's digest changes (values never shown), stopped and started by ``state``,
repaired when its monitor died, removed when no manifest names it (hand-made containers
are never touched), and refused with nothing changed for hostile images.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, Result, write_manifest
from tests.registry import images as build
from tests.registry.client import push
from tests.registry.server import Registry

pytest_plugins = ["tests.registry.fixtures"]


class Host:
    def __init__(self, state: Path, manifests: Path) -> None:
        self.state, self.manifests = state, manifests

    def __call__(self, *args: str, timeout: float = 120) -> Result:
        env = {**os.environ, "PYPROV_STATE_DIR": str(self.state)}
        done = subprocess.run([sys.executable, "-m", "controller", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)
        return Result(done.returncode, done.stdout, done.stderr)

    def apply(self, *extra: str) -> tuple[int, dict[str, dict[str, object]]]:
        result = self("apply", str(self.manifests), "--output", "json", *extra)
        assert result.code in (0, 2, 4, 6), result.stderr
        report = json.loads(result.stdout)
        return result.code, {f"{e['kind']}/{e['name']}": e
                             for e in report["hosts"]["localhost"]["events"]}

    def container(self, name: str) -> dict[str, object] | None:
        result = self("inspect", name)
        if result.code != 0:
            return None
        found = json.loads(result.stdout)[0]
        return found if "SpecHash" in found else None


def container_manifest(directory: Path, image: str, env: str = "hello",
                       state: str = "running", extra: str = "") -> None:
    write_manifest(directory, "web.yml", f"""\
kind: Container
name: web
image: {image}
state: {state}
entrypoint: ["/bin/sh", "-c"]
command: ["echo GREETING=$GREETING; exec sleep 600"]
environment:
  GREETING: "{env}"
  DB_PASSWORD: "hunter2"
restart: always
{extra}""")


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    made = Host(tmp_path / "state", tmp_path / "manifests")
    made.manifests.mkdir()
    yield made
    listed = made("ps", "-aq", "--no-trunc")
    for cid in listed.stdout.split():
        made("rm", "-f", "-v", cid)
    found = subprocess.run(["pgrep", "-f", f"{made.state}/zygote.sock"], capture_output=True,
                           text=True, check=False)
    for pid in found.stdout.split():
        os.kill(int(pid), signal.SIGTERM)


def test_create_then_nothing_then_recreate_on_environment_only(
        host: Host, registry: Registry) -> None:
    image = f"{registry.host}/busybox:oci"
    container_manifest(host.manifests, image)
    code, events = host.apply()
    assert code == 2, events
    assert events["Container/web"]["action"] == "create", events
    first = host.container("web")
    assert first is not None
    assert first["State"]["status"] == "running"
    code, events = host.apply()
    assert code == 0, events
    assert not events["Container/web"].get("changed"), events
    write_manifest(host.manifests, "other.yml", f"""\
# an unrelated edit: another container
kind: Container
name: other
image: {image}
entrypoint: ["sleep"]
command: ["600"]
""")
    container_manifest(host.manifests, image, extra="# a comment in the container's file\n")
    code, events = host.apply()
    assert code == 2, events
    assert events["Container/other"]["action"] == "create"
    assert not events["Container/web"].get("changed"), events
    assert host.container("web")["Id"] == first["Id"]  # type: ignore[index]
    container_manifest(host.manifests, image, env="changed")
    code, events = host.apply()
    event = events["Container/web"]
    assert code == 2
    assert event["action"] == "recreate"
    assert "environment: GREETING changed" in event["changes"]
    assert "changed" in json.dumps(event)
    assert "hunter2" not in json.dumps(event)
    second = host.container("web")
    assert second["Id"] != first["Id"]
    assert second["State"]["status"] == "running"


def test_state_stopped_and_running_and_a_dead_monitor_is_repaired(
        host: Host, registry: Registry) -> None:
    image = f"{registry.host}/busybox:oci"
    container_manifest(host.manifests, image)
    host.apply()
    container_manifest(host.manifests, image, state="stopped")
    code, events = host.apply()
    assert code == 2
    assert events["Container/web"]["summary"] == "stop"
    assert host.container("web")["State"]["status"] == "exited"  # type: ignore[index]
    container_manifest(host.manifests, image)
    code, _ = host.apply()
    state = host.container("web")["State"]  # type: ignore[index]
    assert code == 2
    assert state["status"] == "running"
    os.kill(state["monitor_pid"], signal.SIGKILL)  # a crash, or a reboot, of its monitor
    os.kill(state["pid"], signal.SIGKILL)
    time.sleep(0.1)
    assert host.container("web")["State"]["status"] == "dead"  # type: ignore[index]
    code, events = host.apply()
    assert code == 2
    assert events["Container/web"]["summary"] == "start"
    assert host.container("web")["State"]["status"] == "running"  # type: ignore[index]


def test_a_new_digest_under_the_same_tag_recreates(host: Host, scratch_registry: Registry
                                                   ) -> None:
    push(scratch_registry, "app", "v1", build.busybox_image("oci"))
    image = f"{scratch_registry.host}/app:v1"
    write_manifest(host.manifests, "image.yml", f"kind: Image\nname: {image}\npull: always\n")
    container_manifest(host.manifests, image)
    host.apply()
    first = host.container("web")
    changed = build.build_image([build.busybox_base_entries(),
                                 [build.file("etc/version", "2\n")]],
                                build.BUSYBOX_CONFIG)
    push(scratch_registry, "app", "v1", changed)
    code, events = host.apply()
    assert code == 2, events
    assert events["Container/web"]["action"] == "recreate", events
    assert any(c.startswith("image: ") for c in events["Container/web"]["changes"])
    assert host.container("web")["Id"] != first["Id"]  # type: ignore[index]


def test_unnamed_managed_containers_are_pruned_hand_made_ones_kept(
        host: Host, registry: Registry) -> None:
    image = f"{registry.host}/busybox:oci"
    container_manifest(host.manifests, image)
    host.apply()
    assert host("run", "-d", "--name", "by-hand", image, "sleep", "600").code == 0
    (host.manifests / "web.yml").unlink()
    write_manifest(host.manifests, "image.yml", f"kind: Image\nname: {image}\n")
    code, events = host.apply()
    assert code == 2, events
    assert events["Container/web"]["action"] == "delete"
    assert host.container("web") is None
    assert host.container("by-hand")["State"]["status"] == "running"  # type: ignore[index]


def test_hostile_images_are_refused_and_nothing_is_created(
        host: Host, scratch_registry: Registry) -> None:
    base = build.busybox_base_entries()
    hostile = {
        "workdir": build.build_image([base], {**build.BUSYBOX_CONFIG,
                                              "WorkingDir": "/proc/self/fd/7"}),
        "volume": build.build_image([base], {**build.BUSYBOX_CONFIG, "Volumes": {"../..": {}}}),
    }
    for tag, image in hostile.items():
        push(scratch_registry, "hostile", tag, image)
        ref = f"{scratch_registry.host}/hostile:{tag}"
        write_manifest(host.manifests, "image.yml", f"kind: Image\nname: {ref}\n")
        container_manifest(host.manifests, ref)
        code, events = host.apply()
        assert code == 6, (tag, events)  # the image was pulled (changed), the container failed
        assert events["Container/web"]["failed"], (tag, events)
        assert "refused" in events["Container/web"]["error"], events
        assert host.container("web") is None
