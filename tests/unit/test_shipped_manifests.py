"""Every manifest the project ships validates: the default state and the seed playbooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.model import Container, DaemonConfig
from controller.manifests.loader import load_manifests
from tests.conftest import REPO

SCENARIOS = sorted(p for p in (REPO / "playbooks").iterdir() if p.is_dir())


def test_default_manifests_validate_and_work_offline() -> None:
    documents = [d.document for d in load_manifests([REPO / "manifests"])]
    assert documents
    # Only kinds that converge with no network belong in the default state.
    assert all(isinstance(d, DaemonConfig) for d in documents)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_seed_playbooks_validate(scenario: Path) -> None:
    documents = [d.document for d in load_manifests([scenario])]
    containers = [d for d in documents if isinstance(d, Container)]
    assert containers, f"{scenario.name} declares no container"
    for container in containers:
        for volume in container.volumes:
            if volume.type == "bind":
                assert volume.source is not None
                assert volume.source.startswith("/")


def test_mysql_seed_is_the_seed_command() -> None:
    (_image, mysql) = [d.document for d in load_manifests([REPO / "playbooks" / "mysql"])]
    assert isinstance(mysql, Container)
    assert [str(p) for p in mysql.ports] == ["3307:3306/tcp"]
    assert [v.source for v in mysql.volumes] == [
        str(REPO / "playbooks" / "mysql" / sub) for sub in ("conf", "logs", "data")]
    assert mysql.image_reference.name == "docker.io/library/mysql"
