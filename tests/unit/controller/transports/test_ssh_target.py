"""Inventory values win over ~/.ssh/config, which wins over defaults (as Ansible + OpenSSH)."""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest

from controller.transports.ssh_target import SshTarget, load_ssh_config, resolve

CONFIG = paramiko.SSHConfig.from_text("""
Host web1
    HostName 10.0.0.11
    User deploy
    Port 2222
    IdentityFile ~/.ssh/web_key
    ProxyJump admin@bastion:2200
    UserKnownHostsFile ~/.ssh/fleet_known_hosts /etc/ssh/extra_known_hosts

Host *
    User fallback
""")


def test_config_fills_what_the_inventory_leaves_open() -> None:
    resolved = resolve(SshTarget("web1", "web1"), CONFIG)
    assert resolved.hostname == "10.0.0.11"
    assert resolved.port == 2222
    assert resolved.user == "deploy"
    assert resolved.key_files[0].endswith("/.ssh/web_key")
    assert not resolved.key_files[0].startswith("~")
    assert resolved.proxy_jump == "admin@bastion:2200"
    assert resolved.known_hosts[1] == "/etc/ssh/extra_known_hosts"


def test_inventory_values_win() -> None:
    resolved = resolve(SshTarget("web1", "web1", port=22, user="root", key_file="/k"), CONFIG)
    assert (resolved.port, resolved.user, resolved.key_files) == (22, "root", ("/k",))


@pytest.mark.parametrize("host", ["other", "10.9.9.9"])
def test_unmatched_hosts_get_the_wildcard_and_defaults(host: str) -> None:
    resolved = resolve(SshTarget(host, host), CONFIG)
    assert (resolved.hostname, resolved.port, resolved.user) == (host, 22, "fallback")
    assert resolved.proxy_jump is None


def test_match_exec_runs_although_invoke_is_not_imported_up_front(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The transports package keeps paramiko's invoke import out of every run's start;
    # a config that needs it (Match exec) still works, as OpenSSH evaluates it.
    config = tmp_path / "config"
    config.write_text('Match exec "test 1 = 1"\n    User matched\n'
                      'Match exec "test 1 = 2"\n    Port 2222\n')
    with Path("/dev/null").open() as nothing:
        monkeypatch.setattr("sys.stdin", nothing)  # invoke mirrors stdin to the command
        resolved = resolve(SshTarget("web", "web.example"), load_ssh_config(config))
    assert resolved.user == "matched"
    assert resolved.port == 22
