"""docker's config.json: read what docker wrote, write what docker reads, 0600."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from agent.errors import AuthError
from agent.registry.credentials import Credentials, CredentialStore


def test_reads_docker_written_entries_for_the_hub_and_a_private_registry(
        tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    secret = base64.b64encode(b"alice:s3:cret").decode()
    path.write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": secret},
        "192.168.88.92:5000": {"username": "bob", "password": "pw"},
        "https://token.example/": {"identitytoken": "refresh"}}}))
    store = CredentialStore(path)
    assert store.get("docker.io") == Credentials("alice", "s3:cret")
    assert store.get("registry-1.docker.io") == Credentials("alice", "s3:cret")
    assert store.get("192.168.88.92:5000") == Credentials("bob", "pw")
    assert store.get("token.example") == Credentials("<token>", "", "refresh")
    assert store.get("elsewhere:5000") is None
    assert "s3:cret" not in repr(store.get("docker.io"))


def test_login_writes_0600_and_keeps_other_keys_logout_removes(tmp_path: Path) -> None:
    path = tmp_path / "docker" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"psFormat": "table", "auths": {}}))
    store = CredentialStore(path)
    store.store("docker.io", Credentials("alice", "pw"))
    store.store("127.0.0.1:5000", Credentials("bob", "pw2"))
    data = json.loads(path.read_text())
    assert data["psFormat"] == "table"
    assert set(data["auths"]) == {"https://index.docker.io/v1/", "127.0.0.1:5000"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.remove("127.0.0.1:5000") is True
    assert store.remove("127.0.0.1:5000") is False
    assert store.get("127.0.0.1:5000") is None
    assert store.get("docker.io") == Credentials("alice", "pw")


def test_a_broken_file_is_an_error_not_anonymous_access(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{nope")
    with pytest.raises(AuthError, match="cannot read"):
        CredentialStore(path).get("docker.io")
    path.write_text(json.dumps({"auths": {"r:5000": {"auth": "!!!"}}}))
    with pytest.raises(AuthError, match="base64"):
        CredentialStore(path).get("r:5000")
