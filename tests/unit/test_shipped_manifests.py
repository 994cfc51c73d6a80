"""Every manifest the project ships validates: the default state and the seed playbooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.model import Container, DaemonConfig
from controller.inventory import load_inventory
from controller.manifests.loader import load_manifests
from controller.playbooks.model import load_playbook
from controller.plays import plan_plays
from tests.conftest import REPO

PLAYBOOKS = REPO / "playbooks"
SCENARIOS = sorted(p for p in PLAYBOOKS.iterdir() if p.is_dir() and p.name != "fleet")


def test_default_manifests_validate_and_work_offline() -> None:
    documents = [d.document for d in load_manifests([REPO / "manifests"])]
    assert documents
    # Only kinds that converge with no network belong in the default state.
    assert all(isinstance(d, DaemonConfig) for d in documents)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_seed_scenarios_validate(scenario: Path) -> None:
    documents = [d.document for d in load_manifests([scenario])]
    containers = [d for d in documents if isinstance(d, Container)]
    assert containers, f"{scenario.name} declares no container"
    for container in containers:
        for volume in container.volumes:
            if volume.type == "bind":
                assert volume.source is not None
                assert volume.source.startswith("/")


def test_mysql_seed_is_the_seed_command() -> None:
    (_image, mysql) = [d.document for d in load_manifests([PLAYBOOKS / "mysql"])]
    assert isinstance(mysql, Container)
    assert [str(p) for p in mysql.ports] == ["3307:3306/tcp"]
    assert [v.source for v in mysql.volumes] == [
        str(PLAYBOOKS / "mysql" / sub) for sub in ("conf", "logs", "data")]
    assert mysql.image_reference.name == "docker.io/library/mysql"


def test_site_playbook_renders_for_the_example_fleet() -> None:
    inventory = load_inventory(PLAYBOOKS / "inventory.example.ini")
    states = {s.host: s for s in plan_plays(load_playbook(PLAYBOOKS / "site.yml"), inventory)}
    assert sorted(states) == ["192.168.88.101", "192.168.88.102", "192.168.88.103",
                              "192.168.88.92"]
    for state in states.values():
        (daemon,) = [d for d in state.documents if isinstance(d, DaemonConfig)]
        assert daemon.settings["insecure-registries"] == ["192.168.88.92:5000"]
        assert daemon.settings["registry-mirrors"] == ["https://docker.m.daocloud.io"]
    registry = states["192.168.88.92"]
    assert any(isinstance(d, Container) and d.name == "registry" for d in registry.documents)
