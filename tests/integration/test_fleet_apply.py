"""The controller over SSH against the real sshd fleet: bootstrap, apply, failures.

The controller runs inside the fleet's controller network namespace; each host is an
sshd in its own network and mount namespaces, with its own /etc/docker, /opt/pyprov
and /var/lib/pyprov. What a host got is read back independently, with OpenSSH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version as distribution_version
from pathlib import Path

import pytest

from controller.bootstrap.wheelhouse import HostPython, build_wheelhouse
from tests.conftest import REPO
from tests.fleet import Fleet

pytest_plugins = ["tests.fleet.fixtures"]

MANIFEST = """\
kind: DaemonConfig
name: docker
settings:
  registry-mirrors: ["{{ mirror }}"]
  insecure-registries: ["{{ hostvars[groups['registry'][0]].ansible_host }}:5000"]
  labels: ["host={{ inventory_hostname }}"]
"""

PLAYBOOK = """\
- name: mirrors and the private registry, fleet-wide
  hosts: fleet
  vars: {mirror: "https://mirror.fleet.test"}
  manifests: [manifests/]
"""


def pyprov(fleet: Fleet, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The real CLI, run from the controller netns (this interpreter, this checkout)."""
    env = {**os.environ, "PYPROV_STATE_DIR": str(fleet.directory / "controller-state")}
    return fleet.run_in_controller([sys.executable, "-m", "controller", *args], cwd=REPO,
                                   env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def site(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A playbook directory with an inventory of the fleet (first host: the registry)."""
    root = tmp_path_factory.mktemp("site")
    (root / "manifests").mkdir()
    (root / "manifests" / "daemon.yml").write_text(MANIFEST)
    (root / "site.yml").write_text(PLAYBOOK)
    (root / "ssh_config").write_text("")
    fleet.write_inventory(root / "hosts.ini", groups={"registry": [fleet.names[0]]})
    return root


def common(fleet: Fleet, site: Path) -> list[str]:
    return ["-i", str(site / "hosts.ini"), "--known-hosts", str(fleet.known_hosts),
            "--ssh-config", str(site / "ssh_config")]


def remove_daemon_json(fleet: Fleet) -> None:
    for name in fleet.names:
        fleet.ssh(name, "rm -f /etc/docker/daemon.json")


def daemon_json(fleet: Fleet, name: str) -> dict[str, object] | None:
    read = fleet.ssh(name, "cat /etc/docker/daemon.json")
    return json.loads(read.stdout) if read.returncode == 0 else None


@pytest.fixture(scope="module")
def bootstrapped(fleet: Fleet, site: Path) -> Fleet:
    # The wheel house is built where PyPI is reachable (this process, outside the fleet's
    # networks), as an operator's controller would; the bootstrap then finds it cached.
    build_wheelhouse(HostPython.local(), distribution_version("pyprov"))
    first = pyprov(fleet, "bootstrap", *common(fleet, site))
    assert first.returncode == 2, first.stdout + first.stderr
    return fleet


@pytest.fixture
def installed(bootstrapped: Fleet, site: Path) -> Fleet:
    """The agent on every host, even after a mutable_fleet test wiped /opt/pyprov."""
    result = pyprov(bootstrapped, "bootstrap", *common(bootstrapped, site))
    assert result.returncode in (0, 2), result.stdout + result.stderr
    return bootstrapped


def test_bootstrap_installs_the_agent_once(bootstrapped: Fleet, site: Path) -> None:
    for name in bootstrapped.names:
        answer = bootstrapped.ssh(name, "/opt/pyprov/bin/python -I -m agent version")
        assert answer.returncode == 0, answer.stderr
        assert json.loads(answer.stdout)["protocol"] == 1
    again = pyprov(bootstrapped, "bootstrap", *common(bootstrapped, site))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "changed=0" in again.stdout
    # A host with another build of the same version (an older agent) is upgraded.
    stale = bootstrapped.names[1]
    bootstrapped.ssh(stale, "echo 0000 > /opt/pyprov/.pyprov-build")
    upgrade = pyprov(bootstrapped, "bootstrap", *common(bootstrapped, site), "--output", "json")
    assert upgrade.returncode == 2, upgrade.stdout + upgrade.stderr
    hosts = json.loads(upgrade.stdout)["hosts"]
    assert [name for name, tally in hosts.items() if tally["changed"]] == [stale]
    assert "upgraded" in hosts[stale]["events"][0]["summary"]


def test_apply_converges_every_host_then_changes_nothing(installed: Fleet,
                                                         site: Path) -> None:
    fleet = installed
    remove_daemon_json(fleet)
    registry = fleet.host(fleet.names[0]).address
    first = pyprov(fleet, "apply", *common(fleet, site), str(site / "site.yml"))
    assert first.returncode == 2, first.stdout + first.stderr
    for name in fleet.names:
        assert daemon_json(fleet, name) == {
            "registry-mirrors": ["https://mirror.fleet.test"],
            "insecure-registries": [f"{registry}:5000"],
            "labels": [f"host={name}"],
        }
    assert not Path("/etc/docker/daemon.json").exists() or "mirror.fleet.test" not in Path(
        "/etc/docker/daemon.json").read_text()  # the real host was never touched
    second = pyprov(fleet, "apply", *common(fleet, site), str(site / "site.yml"))
    assert second.returncode == 0, second.stdout + second.stderr
    for name in fleet.names:
        assert f"{name:<26} : ok=1    changed=0" in second.stdout


def test_an_unreachable_host_does_not_stop_the_others(installed: Fleet, site: Path,
                                                      mutable_fleet: Fleet) -> None:
    fleet = mutable_fleet
    down = fleet.names[1]
    remove_daemon_json(fleet)
    fleet.stop_sshd(down)
    result = pyprov(fleet, "apply", *common(fleet, site), str(site / "site.yml"),
                    "--output", "json")
    # Puppet's detailed codes: the others changed (2) and one host is unreachable (4).
    assert result.returncode == 6, result.stdout + result.stderr
    report = json.loads(result.stdout)["hosts"]
    assert report[down]["unreachable"] == 1
    for name in fleet.names:
        if name != down:
            assert report[name]["changed"] == 1
            assert daemon_json(fleet, name) is not None


def test_a_changed_host_key_is_refused_and_nothing_is_sent(installed: Fleet, site: Path,
                                                          mutable_fleet: Fleet) -> None:
    fleet = mutable_fleet
    victim = fleet.names[2]
    remove_daemon_json(fleet)
    fleet.regenerate_host_key(victim)
    result = pyprov(fleet, "apply", *common(fleet, site), str(site / "site.yml"))
    assert result.returncode == 6, result.stdout + result.stderr  # the others changed
    assert "CHANGED" in result.stdout
    assert "nothing was sent" in result.stdout
    fleet.trust_host_keys()
    assert daemon_json(fleet, victim) is None  # read with the new key: nothing arrived


def test_one_hosts_broken_rendering_stops_the_whole_fleet(bootstrapped: Fleet, site: Path,
                                                          mutable_fleet: Fleet) -> None:
    fleet = mutable_fleet
    remove_daemon_json(fleet)
    broken = site / "broken"
    (broken / "manifests").mkdir(parents=True)
    # Only the last host renders an unclosed flow sequence: a YAML syntax error.
    (broken / "manifests" / "daemon.yml").write_text(MANIFEST.replace(
        '["host={{ inventory_hostname }}"]',
        '{{ "[oops" if inventory_hostname == "' + fleet.names[-1] + '" else "[]" }}'))
    (broken / "site.yml").write_text(PLAYBOOK)
    result = pyprov(fleet, "apply", *common(fleet, site), str(broken / "site.yml"))
    assert result.returncode == 4, result.stdout + result.stderr
    assert f"(host {fleet.names[-1]})" in result.stderr
    assert "daemon.yml:7:1:" in result.stderr  # where the unclosed "[" of line 6 ends
    assert "opened at 6:" in result.stderr
    for name in fleet.names:
        assert daemon_json(fleet, name) is None  # no host was touched


def test_unknown_hosts_are_refused_unless_accept_new(installed: Fleet, site: Path,
                                                     tmp_path: Path) -> None:
    fleet = installed
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    args = ["-i", str(site / "hosts.ini"), "--known-hosts", str(empty),
            "--ssh-config", str(site / "ssh_config"), str(site / "site.yml")]
    refused = pyprov(fleet, "check", *args)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert refused.stdout.count("is not in known_hosts") == len(fleet.names)
    assert empty.read_text() == ""

    learned = pyprov(fleet, "check", *args, "--ssh-accept-new")
    assert learned.returncode in (0, 2), learned.stdout + learned.stderr  # reached every host
    recorded = empty.read_text().splitlines()
    assert len(recorded) == len(fleet.names)
    strict_again = pyprov(fleet, "check", *args)
    assert strict_again.returncode == learned.returncode, strict_again.stdout


def resident_pid(fleet: Fleet, name: str) -> int | None:
    """The pid of the agent serving the host's socket (asked through the socket itself)."""
    done = fleet.ssh(name, "/opt/pyprov/bin/python -I -c 'import json, sys; from agent.resident"
                     " import running; from agent.state import StateDir; from pathlib import "
                     "Path; r = running(StateDir(Path(\"/var/lib/pyprov\"))); "
                     "print(json.dumps(r and r.pid))'")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_bootstrap_starts_one_resident_agent_per_host(installed: Fleet, site: Path) -> None:
    fleet = installed
    pids = {name: resident_pid(fleet, name) for name in fleet.names}
    assert all(pids.values()), pids
    again = pyprov(fleet, "bootstrap", *common(fleet, site))
    assert again.returncode == 0, again.stdout + again.stderr
    assert {name: resident_pid(fleet, name) for name in fleet.names} == pids
    for name in fleet.names:
        mode = fleet.ssh(name, "stat -c %a /var/lib/pyprov/agent.sock").stdout.strip()
        assert mode == "600"


def test_apply_reaches_resident_agents_without_starting_a_process(installed: Fleet,
                                                                  site: Path) -> None:
    fleet = installed
    remove_daemon_json(fleet)
    served = {name: fleet.ssh(name, "cat /var/lib/pyprov/agent.log").stdout.count(
        "served apply") for name in fleet.names}
    logs = {name: fleet.host(name).dirs.sshd_log.read_text(errors="replace")
            for name in fleet.names}
    first = pyprov(fleet, "apply", *common(fleet, site), str(site / "site.yml"))
    assert first.returncode == 2, first.stdout + first.stderr
    second = pyprov(fleet, "apply", *common(fleet, site), str(site / "site.yml"))
    assert second.returncode == 0, second.stdout + second.stderr
    for name in fleet.names:
        new_log = fleet.host(name).dirs.sshd_log.read_text(errors="replace")[len(logs[name]):]
        sessions = new_log.count("Starting session:")
        assert new_log.count("Accepted publickey") >= 2, new_log
        log = fleet.ssh(name, "cat /var/lib/pyprov/agent.log").stdout
        assert log.count("served apply") == served[name] + 2, log
        # Two controller runs, no exec at all: the agent answered on forwarded channels.
        assert sessions == 0, new_log
        assert daemon_json(fleet, name) is not None


def test_without_a_resident_agent_the_relay_starts_one(installed: Fleet, site: Path,
                                                      mutable_fleet: Fleet,
                                                      tmp_path: Path) -> None:
    fleet = mutable_fleet
    remove_daemon_json(fleet)
    host = fleet.names[1]
    fleet.write_inventory(tmp_path / "hosts.ini", groups={"registry": [fleet.names[0]]})
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / f"{host}.yml").write_text("pyprov_agent: none\n")
    args = ["-i", str(tmp_path / "hosts.ini"), "--known-hosts", str(fleet.known_hosts),
            "--ssh-config", str(site / "ssh_config")]
    stopped = pyprov(fleet, "bootstrap", *args, "--output", "json")
    assert stopped.returncode == 2, stopped.stdout + stopped.stderr
    changed = {name for name, tally in json.loads(stopped.stdout)["hosts"].items()
               if tally["changed"]}
    assert changed == {host}
    assert resident_pid(fleet, host) is None
    log_before = fleet.host(host).dirs.sshd_log.read_text(errors="replace")
    result = pyprov(fleet, "apply", *args, str(site / "site.yml"))
    assert result.returncode == 2, result.stdout + result.stderr
    new_log = fleet.host(host).dirs.sshd_log.read_text(errors="replace")[len(log_before):]
    assert "Starting session: command" in new_log  # the relay, which ran the agent itself
    assert daemon_json(fleet, host) is not None


def test_an_upgrade_replaces_the_resident_agent(installed: Fleet, site: Path) -> None:
    fleet = installed
    stale = fleet.names[0]
    # An older build, installed and serving: the resident agent reads its build at start.
    fleet.ssh(stale, "echo 0000 > /opt/pyprov/.pyprov-build")
    restarted = fleet.ssh(stale, "/opt/pyprov/bin/python -I -m agent serve --detach")
    assert restarted.returncode == 2, restarted.stdout + restarted.stderr
    before = resident_pid(fleet, stale)
    upgrade = pyprov(fleet, "bootstrap", *common(fleet, site), "--limit", stale,
                     "--output", "json")
    assert upgrade.returncode == 2, upgrade.stdout + upgrade.stderr
    events = json.loads(upgrade.stdout)["hosts"][stale]["events"]
    assert "upgraded" in events[0]["summary"]
    resident = next(e for e in events if e["name"] == "resident")
    assert "replaced the resident agent" in resident["summary"], events
    after = resident_pid(fleet, stale)
    assert after is not None
    assert after != before
    # The old one is gone (or a zombie its reaper has yet to collect: it runs no more).
    gone = fleet.ssh(stale, f"test ! -e /proc/{before} || "
                            f"grep -q '^State:.Z' /proc/{before}/status")
    assert gone.returncode == 0


def test_proxyjump_from_ssh_config_reaches_a_host_through_another(installed: Fleet, site: Path,
                                                                 tmp_path: Path) -> None:
    fleet = installed
    jump, target = fleet.host(fleet.names[0]), fleet.host(fleet.names[1])
    config = tmp_path / "ssh_config"
    config.write_text(f"Host {target.address}\n    ProxyJump root@{jump.address}\n"
                      f"Host *\n    IdentityFile {fleet.client_key}\n")
    log_before = target.dirs.sshd_log.read_text(errors="replace")
    result = pyprov(fleet, "check", "-i", str(site / "hosts.ini"), "--limit", target.name,
                    "--known-hosts", str(fleet.known_hosts), "--ssh-config", str(config),
                    str(site / "site.yml"))
    assert result.returncode in (0, 2), result.stdout + result.stderr  # reached and checked
    new_log = target.dirs.sshd_log.read_text(errors="replace")[len(log_before):]
    # The target saw the connection come from the jump host, not from the controller.
    assert f"Accepted publickey for root from {jump.address}" in new_log, new_log
    assert f"from {fleet.controller_address}" not in new_log
