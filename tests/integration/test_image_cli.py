"""Host image commands that keep state of their own: login/logout (docker's config.json),
and `images --verify`, which must notice damage."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, RunPyprov
from tests.registry.contents import USERS
from tests.registry.server import Registry

pytest_plugins = ["tests.registry.fixtures"]


def run(state: Path, docker_config: Path, *args: str,
        stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYPROV_STATE_DIR": str(state), "DOCKER_CONFIG": str(docker_config)}
    return subprocess.run([sys.executable, "-m", "controller", *args], input=stdin, text=True,
                          capture_output=True, cwd=REPO, env=env, timeout=120, check=False)


def test_login_checks_the_password_stores_0600_and_logout_forgets(
        auth_registry: Registry, tmp_path: Path) -> None:
    config = tmp_path / "docker"
    state = tmp_path / "state"
    wrong = run(state, config, "login", auth_registry.host, "-u", "alice",
                "--password-stdin", stdin="nope\n")
    assert wrong.returncode == 4
    assert "refused" in wrong.stderr
    assert "nope" not in wrong.stderr + wrong.stdout
    assert not (config / "config.json").exists()  # nothing stored on failure
    right = run(state, config, "login", auth_registry.host, "-u", "alice",
                "--password-stdin", stdin=USERS["alice"] + "\n")
    assert right.returncode == 0, right.stderr
    assert right.stdout.strip() == "Login Succeeded"
    stored = config / "config.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert set(json.loads(stored.read_text())["auths"]) == {auth_registry.host}
    pulled = run(state, config, "pull", "-q", f"{auth_registry.host}/busybox:oci")
    assert pulled.returncode == 0, pulled.stderr
    out = run(state, config, "logout", auth_registry.host)
    assert out.stdout.strip() == f"Removing login credentials for {auth_registry.host}"
    assert json.loads(stored.read_text())["auths"] == {}
    denied = run(state, config, "pull", f"{auth_registry.host}/busybox:oci")  # asks, as docker
    assert denied.returncode == 4
    assert "login" in denied.stderr


def test_verify_notices_a_damaged_blob(pyprov: RunPyprov, registry: Registry,
                                       state_dir: Path) -> None:
    assert pyprov("pull", "-q", f"{registry.host}/busybox:oci").code == 0
    assert pyprov("images", "--verify").code == 0
    blobs = sorted((state_dir / "images" / "blobs" / "sha256").iterdir(),
                   key=lambda p: p.stat().st_size)
    victim = blobs[-1]  # the biggest: a layer
    data = bytearray(victim.read_bytes())
    data[100] ^= 1
    victim.write_bytes(bytes(data))
    damaged = pyprov("images", "--verify")
    assert damaged.code == 4
    assert f"blob sha256:{victim.name} is damaged" in damaged.stdout
