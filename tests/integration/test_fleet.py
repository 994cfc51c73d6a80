"""The test fleet itself: hosts answer real SSH, differ from each other, fail on demand."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import paramiko
import pytest

from tests.conftest import REPO
from tests.fleet import Fleet, FleetError

pytest_plugins = ["tests.fleet.fixtures"]

PARAMIKO_CHECK = textwrap.dedent("""
    import sys
    import paramiko
    address, key, known_hosts = sys.argv[1:4]
    client = paramiko.SSHClient()
    if known_hosts:
        client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(address, username="root", key_filename=key, allow_agent=False,
                   look_for_keys=False, timeout=5)
    _, stdout, _ = client.exec_command("cat /etc/hostname")
    print(stdout.read().decode().strip())
    client.close()
""")


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_every_host_answers_as_itself(mutable_fleet: Fleet) -> None:
    fleet = mutable_fleet
    assert len(fleet.hosts) >= 3
    assert len({host.address for host in fleet.hosts}) == len(fleet.hosts)
    for host in fleet.hosts:
        out = _ok(fleet.ssh(host.name, "cat /etc/hostname; hostname; "
                                       "ip -4 -o addr show dev eth0; echo $SSH_CONNECTION"))
        hostname_file, hostname, address_line, connection = out.splitlines()
        assert hostname_file == hostname == host.name
        assert f" {host.address}/" in address_line
        assert connection.split()[0] == fleet.controller_address
        assert connection.split()[2:] == [host.address, "22"]
        # A fresh /root: this machine's dotfiles (pyenv in ~/.bashrc) do not reach hosts.
        assert _ok(fleet.ssh(host.name, "touch ~/.seen; command -v python3")).strip() \
            == "/usr/bin/python3"
        assert (host.dirs.root_home / ".seen").exists()
        assert not Path("/root/.seen").exists()
        pid = host.sshd_pid
        assert pid is not None
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "sshd"
        assert int(host.dirs.pid_file.read_text()) == pid


def test_hosts_are_only_reachable_from_the_controller_netns(fleet: Fleet) -> None:
    assert fleet.controller_address not in Path("/proc/net/fib_trie").read_text()
    started = time.monotonic()
    argv = fleet.ssh_argv(fleet.hosts[0].name, "true", options={"ConnectTimeout": "1"})
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    assert done.returncode == 255
    assert time.monotonic() - started < 2
    routes = _ok(fleet.run_in_controller(["ip", "-4", "-o", "addr"], capture_output=True,
                                         text=True))
    assert f" {fleet.controller_address}/" in routes


def test_host_dirs_are_private_to_each_host(mutable_fleet: Fleet) -> None:
    fleet = mutable_fleet
    a, b = fleet.hosts[0], fleet.hosts[1]
    mark = f"fleet-test-{secrets.token_hex(4)}"
    _ok(fleet.ssh(a.name, f"touch /etc/docker/{mark} /opt/pyprov/{mark} /var/lib/pyprov/{mark}"))
    for directory in a.dirs.state_dirs():
        assert (directory / mark).exists()
    for directory in b.dirs.state_dirs():
        assert not (directory / mark).exists()
    seen_by_b = fleet.ssh(b.name, f"ls /etc/docker/{mark} /opt/pyprov/{mark} "
                                  f"/var/lib/pyprov/{mark}")
    assert seen_by_b.returncode == 2, seen_by_b
    for real in ("/etc/docker", "/opt/pyprov", "/var/lib/pyprov"):
        assert not Path(real, mark).exists()
    # Writing to the host's dir from outside is what the host sees (tests seed files so).
    (b.dirs.etc_docker / "daemon.json").write_text('{"debug": true}\n')
    assert json.loads(_ok(fleet.ssh(b.name, "cat /etc/docker/daemon.json"))) == {"debug": True}
    assert _ok(fleet.ssh(a.name, "ls -A /etc/docker")).split() == [mark]


def test_paramiko_reject_policy_with_fleet_known_hosts(fleet: Fleet) -> None:
    for host in fleet.hosts:
        done = fleet.run_in_controller(
            [sys.executable, "-c", PARAMIKO_CHECK, host.address, str(fleet.client_key),
             str(fleet.known_hosts)], capture_output=True, text=True, timeout=60, cwd=REPO)
        assert _ok(done).strip() == host.name
    # The same without the fleet's known_hosts is rejected: the check above is real.
    done = fleet.run_in_controller(
        [sys.executable, "-c", PARAMIKO_CHECK, fleet.hosts[0].address, str(fleet.client_key),
         ""], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode != 0
    assert "not found in known_hosts" in done.stderr


def test_paramiko_in_process_over_a_controller_socket(fleet: Fleet) -> None:
    host = fleet.hosts[-1]
    client = paramiko.SSHClient()
    client.load_host_keys(str(fleet.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(host.address, username="root", key_filename=str(fleet.client_key),
                       allow_agent=False, look_for_keys=False, timeout=5,
                       sock=fleet.connect(host.name))
        _, stdout, _ = client.exec_command("hostname")
        assert stdout.read().decode().strip() == host.name
    finally:
        client.close()


def test_changed_host_key_is_refused_by_strict_ssh(mutable_fleet: Fleet) -> None:
    fleet = mutable_fleet
    host, other = fleet.hosts[1], fleet.hosts[2]
    old_key = host.public_host_key()
    old_pid = host.sshd_pid
    fleet.regenerate_host_key(host.name)
    assert host.public_host_key() != old_key
    assert host.sshd_pid not in (None, old_pid)
    assert old_key in fleet.known_hosts.read_text()
    refused = fleet.ssh(host.name, "true")
    assert refused.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr
    _ok(fleet.ssh(other.name, "true"))
    fleet.trust_host_keys()
    assert _ok(fleet.ssh(host.name, "hostname")).strip() == host.name


def test_stopped_sshd_fails_fast_and_comes_back(mutable_fleet: Fleet) -> None:
    fleet = mutable_fleet
    host, other = fleet.hosts[0], fleet.hosts[1]
    pid = host.sshd_pid
    fleet.stop_sshd(host.name)
    assert host.sshd_pid is None
    assert pid is not None
    assert not Path(f"/proc/{pid}").exists()
    started = time.monotonic()
    down = fleet.ssh(host.name, "true")
    assert time.monotonic() - started < 2
    assert down.returncode == 255
    assert "Connection refused" in down.stderr
    _ok(fleet.ssh(other.name, "true"))
    fleet.start_sshd(host.name)
    assert host.sshd_pid not in (None, pid)
    assert _ok(fleet.ssh(host.name, "hostname")).strip() == host.name


def test_stopping_a_host_ends_its_sessions(mutable_fleet: Fleet) -> None:
    fleet = mutable_fleet
    host = fleet.hosts[2]
    session = fleet.popen_in_controller(fleet.ssh_argv(host.name, "echo up; exec sleep 60"),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert session.stdout is not None
        assert session.stdout.readline() == b"up\n"
        fleet.stop_sshd(host.name)
        assert session.wait(10) == 255
    finally:
        session.kill()
        session.wait()


def test_disconnected_host_times_out(mutable_fleet: Fleet) -> None:
    fleet = mutable_fleet
    host = fleet.hosts[0]
    fleet.disconnect(host.name)
    started = time.monotonic()
    done = fleet.ssh(host.name, "true", options={"ConnectTimeout": "1"})
    assert done.returncode == 255
    assert time.monotonic() - started >= 0.9
    fleet.regenerate_host_key(host.name)  # sshd restarts fine while unplugged
    fleet.reconnect(host.name)
    fleet.trust_host_keys()
    _ok(fleet.ssh(host.name, "true"))


def test_a_host_that_cannot_start_fails_with_the_sshd_log() -> None:
    with Fleet.create(1) as fleet:
        host = fleet.hosts[0]
        fleet.stop_sshd(host.name)
        config = host.dirs.sshd_config
        config.write_text(config.read_text() + "NoSuchOption yes\n")
        with pytest.raises(FleetError) as failed:
            fleet.start_sshd(host.name)
        message = str(failed.value)
        assert "h01: sshd exited with code 255" in message
        assert "Bad configuration option: NoSuchOption" in message
        assert host.sshd_pid is None
        assert f"netns {host.netns}" in fleet.leftovers()  # still up: exists until destroy
    assert fleet.leftovers() == []


def test_ssh_config_and_inventory(fleet: Fleet, tmp_path: Path) -> None:
    config = fleet.ssh_config(tmp_path / "ssh_config")
    for host in fleet.hosts:
        done = fleet.run_in_controller(["ssh", "-F", str(config), host.name, "hostname"],
                                       capture_output=True, text=True, timeout=30)
        assert _ok(done).strip() == host.name
    names = fleet.names
    inventory = fleet.write_inventory(tmp_path / "hosts.ini", groups={"web": names[:2]})
    listed = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(inventory),
         "--list"], capture_output=True, text=True, check=False, timeout=120)
    data = json.loads(_ok(listed))
    assert sorted(data["fleet"]["hosts"]) == names
    assert sorted(data["web"]["hosts"]) == names[:2]
    for host in fleet.hosts:
        variables = data["_meta"]["hostvars"][host.name]
        assert variables["ansible_host"] == host.address
        assert variables["ansible_user"] == "root"
        assert variables["ansible_ssh_private_key_file"] == str(fleet.client_key)
        assert str(fleet.known_hosts) in variables["ansible_ssh_common_args"]


@pytest.mark.skipif(shutil.which("ansible") is None
                    and not (Path(sys.executable).parent / "ansible").exists(),
                    reason="ansible-core (a dev dependency) is not installed")
def test_ansible_reaches_every_host(fleet: Fleet, tmp_path: Path) -> None:
    inventory = fleet.write_inventory(tmp_path / "hosts.ini")
    ansible = shutil.which("ansible") or str(Path(sys.executable).parent / "ansible")
    done = fleet.run_in_controller(
        [ansible, "all", "-i", str(inventory), "-m", "raw", "-a", "cat /etc/hostname",
         "-o"], capture_output=True, text=True, timeout=120,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
             "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
             "ANSIBLE_HOME": str(tmp_path / "ansible-home")})
    out = _ok(done)
    for host in fleet.hosts:
        assert f"{host.name} | CHANGED | rc=0 | (stdout) {host.name}" in out, out


def test_a_fleet_leaves_nothing_behind(tmp_path: Path) -> None:
    """Its own 2-host fleet, through the CLI: up, use, down, then look for leftovers."""
    directory = tmp_path / "fleet"
    up = subprocess.run([sys.executable, "-m", "tests.fleet", "up", "--hosts", "2",
                         "--dir", str(directory)], cwd=REPO, capture_output=True, text=True,
                        check=False, timeout=120)
    described = json.loads(_ok(up))
    fleet = Fleet.attach(directory)
    pids = [host.sshd_pid for host in fleet.hosts]
    assert all(pids)
    assert [h["sshd_pid"] for h in described["hosts"]] == pids
    mark = f"fleet-test-{secrets.token_hex(4)}"
    assert _ok(fleet.ssh("h02", f"touch /opt/pyprov/{mark} && hostname")).strip() == "h02"
    session = fleet.popen_in_controller(fleet.ssh_argv("h01", "exec sleep 60"))
    try:
        down = subprocess.run([sys.executable, "-m", "tests.fleet", "down", "--dir",
                               str(directory)], cwd=REPO, capture_output=True, text=True,
                              check=False, timeout=120)
        _ok(down)
        # The ssh client ran in the fleet's controller netns: teardown killed it too.
        assert session.wait(10) == -9
    finally:
        session.kill()
        session.wait()
    assert not directory.exists()
    assert fleet.leftovers() == []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           check=True).stdout
    assert described["lan_netns"].removesuffix("-lan") not in netns
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()
    assert str(directory) not in Path("/proc/self/mountinfo").read_text()
    assert not Path("/opt/pyprov", mark).exists()


def test_gc_reaps_the_fleet_of_a_killed_owner() -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom tests.fleet import Fleet\n"
         "fleet = Fleet.create(1)\nprint(fleet.directory, fleet.lan_netns, flush=True)\n"
         "sys.stdin.read()"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    directory, lan = owner.stdout.readline().split()
    owner.kill()
    owner.wait()
    fleet = Fleet.attach(directory)
    pid = fleet.hosts[0].sshd_pid
    assert pid is not None  # orphaned, still serving
    gc = subprocess.run([sys.executable, "-m", "tests.fleet", "gc"], cwd=REPO,
                        capture_output=True, text=True, check=False, timeout=60)
    assert lan.removesuffix("-lan") in _ok(gc)
    assert fleet.leftovers() == []
    assert not Path(directory).exists()
    assert not Path(f"/proc/{pid}").exists()
