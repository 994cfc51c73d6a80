"""Which hosts a bootstrap installs on, with which variables (a playbook's or the inventory's)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from controller.bootstrap.command import _targets
from controller.bootstrap.install import AgentService
from controller.errors import TransportError
from controller.inventory import load_inventory
from tests.conftest import REPO


def test_the_shipped_bootstrap_playbook_targets_every_docker_host() -> None:
    inventory = load_inventory(REPO / "playbooks" / "inventory.example.ini")
    targets = _targets(inventory, REPO / "playbooks" / "bootstrap.yml", None)
    assert sorted(targets) == ["192.168.88.101", "192.168.88.102", "192.168.88.103",
                               "192.168.88.92"]
    assert all(v["pyprov_install_dir"] == "/opt/pyprov" for v in targets.values())
    assert targets["192.168.88.92"]["ansible_user"] == "root"  # inventory vars kept


def test_play_vars_override_and_limit_narrows(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text("[a]\na1 pyprov_install_dir=/srv/a\n[b]\nb1\n")
    (tmp_path / "boot.yml").write_text(
        "- hosts: all\n  vars: {pyprov_install_dir: /opt/x}\n"
        "- hosts: b\n  vars: {pyprov_install_dir: /opt/b}\n")
    inventory = load_inventory(tmp_path / "hosts.ini")
    targets = _targets(inventory, tmp_path / "boot.yml", None)
    assert {h: v["pyprov_install_dir"] for h, v in targets.items()} == {
        "a1": "/opt/x", "b1": "/opt/b"}
    assert list(_targets(inventory, None, "b")) == ["b1"]


def test_the_shipped_playbook_asks_for_the_loop_and_a_nightly_drift_check() -> None:
    inventory = load_inventory(REPO / "playbooks" / "inventory.example.ini")
    targets = _targets(inventory, REPO / "playbooks" / "bootstrap.yml", None)
    service = AgentService.from_vars("h", targets["192.168.88.92"])
    assert service.argv() == ["setup", "--agent", "loop", "--mode", "enforce", "--interval",
                              "30", "--drift-delay", "300", "--drift-cron", "17 3 * * *"]
    assert AgentService.from_vars("h", {}).argv()[:3] == ["setup", "--agent", "serve"]


@pytest.mark.parametrize(("variables", "message"), [
    ({"pyprov_agent": "sometimes"}, "pyprov_agent: 'sometimes' is not one of loop, serve"),
    ({"pyprov_mode": "noop"}, "pyprov_mode: 'noop' is not one of enforce, report"),
    ({"pyprov_agent_interval": 0}, "pyprov_agent_interval: 0 is not a positive number"),
    ({"pyprov_agent_interval": "soon"}, "pyprov_agent_interval: 'soon' is not a positive"),
    ({"pyprov_drift_delay": -5}, "pyprov_drift_delay: -5 is not a positive number"),
])
def test_bad_agent_variables_are_refused_before_any_host(variables: dict[str, object],
                                                         message: str) -> None:
    with pytest.raises(TransportError, match=re.escape(message)):
        AgentService.from_vars("web1", variables)
