"""Playbooks, inventories and templates through the real CLI, on local-connection hosts.

Each inventory host here uses ``ansible_connection=local`` and its manifests template
the target path with ``inventory_hostname``, so one machine stands for several hosts.
(The SSH fleet tests drive the same code over real sshd hosts.)
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import RunPyprov, write_manifest

INVENTORY = """\
[registry]
reg1 ansible_connection=local ansible_host=10.9.0.5

[web]
web[1:3] ansible_connection=local

[prod:children]
web
registry

[prod:vars]
mirror=https://mirror.prod.test
"""

DAEMON = """\
kind: DaemonConfig
name: docker
path: {out}/{{{{ inventory_hostname }}}}/daemon.json
settings:
  registry-mirrors: ["{{{{ mirror }}}}"]
  insecure-registries: ["{{{{ hostvars[groups['registry'][0]].ansible_host }}}}:5000"]
  labels: ["role={{{{ role | default('none') }}}}"]
"""

PLAYBOOK = """\
- name: the registry host
  hosts: registry
  vars: {role: registry}
  manifests: [manifests/]
- name: every web server but web3
  hosts: web:!web3
  vars: {role: web}
  manifests: [manifests/]
"""


def _setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    out = tmp_path / "out"
    inventory = write_manifest(tmp_path, "hosts.ini", INVENTORY)
    write_manifest(tmp_path / "manifests", "daemon.yml", DAEMON.format(out=out))
    playbook = write_manifest(tmp_path, "site.yml", PLAYBOOK)
    return inventory, playbook, out


def test_playbook_renders_per_host_and_converges(tmp_path: Path, pyprov: RunPyprov) -> None:
    inventory, playbook, out = _setup(tmp_path)
    first = pyprov("apply", "-i", str(inventory), str(playbook), "--output", "json")
    assert first.code == 2, first.stdout + first.stderr
    report = json.loads(first.stdout)
    assert sorted(report["hosts"]) == ["reg1", "web1", "web2"]
    for host, role in (("reg1", "registry"), ("web1", "web"), ("web2", "web")):
        data = json.loads((out / host / "daemon.json").read_text())
        assert data == {"registry-mirrors": ["https://mirror.prod.test"],
                        "insecure-registries": ["10.9.0.5:5000"], "labels": [f"role={role}"]}
    assert not (out / "web3").exists()

    second = pyprov("apply", "-i", str(inventory), str(playbook))
    assert second.code == 0, second.stdout + second.stderr
    assert "changed=0" in second.stdout


def test_limit_narrows_every_play(tmp_path: Path, pyprov: RunPyprov) -> None:
    inventory, playbook, out = _setup(tmp_path)
    result = pyprov("apply", "-i", str(inventory), "--limit", "web*", str(playbook))
    assert result.code == 2, result.stdout + result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["web1", "web2"]


def test_manifests_without_playbook_go_to_all_hosts(tmp_path: Path, pyprov: RunPyprov) -> None:
    inventory, _, out = _setup(tmp_path)
    inventory.write_text(INVENTORY + "\n[all:vars]\nrole=any\n")
    result = pyprov("apply", "-i", str(inventory), str(tmp_path / "manifests"))
    assert result.code == 2, result.stdout + result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["reg1", "web1", "web2", "web3"]


def test_undefined_variable_for_one_host_stops_everything(tmp_path: Path,
                                                          pyprov: RunPyprov) -> None:
    inventory, playbook, out = _setup(tmp_path)
    # web2 alone lacks 'mirror': its rendering fails, and no host may be touched.
    inventory.write_text(INVENTORY.replace("[prod:vars]\nmirror=https://mirror.prod.test\n", "")
                         + "[registry:vars]\nmirror=https://r.test\n"
                         "[web:vars]\nmirror=https://w.test\n")
    inventory.write_text(inventory.read_text().replace(
        "web[1:3] ansible_connection=local",
        "web1 ansible_connection=local\nweb2 ansible_connection=local mirror=\n"
        "web3 ansible_connection=local"))
    daemon = tmp_path / "manifests" / "daemon.yml"
    daemon.write_text(daemon.read_text().replace("{{ mirror }}", "{{ mirror or undefined_x }}"))
    result = pyprov("apply", "-i", str(inventory), str(playbook))
    assert result.code == 4, result.stdout + result.stderr
    assert f"{daemon}:5:" in result.stderr
    assert "undefined_x" in result.stderr
    assert "(host web2)" in result.stderr
    assert not out.exists()


def test_template_syntax_error_names_file_and_line(tmp_path: Path, pyprov: RunPyprov) -> None:
    inventory, playbook, out = _setup(tmp_path)
    daemon = tmp_path / "manifests" / "daemon.yml"
    daemon.write_text(daemon.read_text().replace("{{ mirror }}", "{{ mirror "))
    result = pyprov("apply", "-i", str(inventory), str(playbook))
    assert result.code == 4
    assert f"{daemon}:" in result.stderr
    assert "template syntax" in result.stderr
    assert not out.exists()


def test_bad_playbook_is_reported_with_its_line(tmp_path: Path, pyprov: RunPyprov) -> None:
    inventory, playbook, _ = _setup(tmp_path)
    playbook.write_text(PLAYBOOK.replace("  hosts: registry\n", "  hosts: registry\n  hots: x\n"))
    result = pyprov("apply", "-i", str(inventory), str(playbook))
    assert result.code == 4
    assert f"{playbook}:3:" in result.stderr
    assert "did you mean 'hosts'" in result.stderr


def test_inventory_list_is_ansible_shaped(tmp_path: Path, pyprov: RunPyprov) -> None:
    inventory, _, _ = _setup(tmp_path)
    result = pyprov("inventory", "-i", str(inventory), "--list")
    assert result.code == 0, result.stderr
    listing = json.loads(result.stdout)
    assert listing["_meta"]["hostvars"]["web1"]["mirror"] == "https://mirror.prod.test"
    assert sorted(listing["prod"]["children"]) == ["registry", "web"]


def test_plays_merge_into_one_desired_state_per_host(tmp_path: Path, pyprov: RunPyprov,
                                                     state_dir: Path) -> None:
    inventory, _, out = _setup(tmp_path)
    write_manifest(tmp_path / "extra", "labels.yml",
                   f"kind: DaemonConfig\nname: other\npath: {out}/extra-{{{{ inventory_hostname"
                   " }}.json\nsettings:\n  debug: true\n")
    playbook = write_manifest(tmp_path, "two.yml", PLAYBOOK + (
        "- hosts: web1\n  manifests: [extra/]\n"))
    result = pyprov("apply", "-i", str(inventory), str(playbook), "--limit", "web1")
    assert result.code == 2, result.stdout + result.stderr
    stored = json.loads((state_dir / "desired.json").read_text())
    assert sorted(d["name"] for d in stored["documents"]) == ["docker", "other"]


def test_the_same_document_from_two_plays_is_a_conflict(tmp_path: Path,
                                                        pyprov: RunPyprov) -> None:
    inventory, _, out = _setup(tmp_path)
    playbook = write_manifest(tmp_path, "twice.yml", PLAYBOOK + (
        "- hosts: web\n  vars: {role: again}\n  manifests: [manifests/]\n"))
    result = pyprov("apply", "-i", str(inventory), str(playbook))
    assert result.code == 4
    assert "declared twice" in result.stderr
    assert "(host web1)" in result.stderr
    assert not out.exists()
