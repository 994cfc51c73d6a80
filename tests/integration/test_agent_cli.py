"""The agent's own CLI: the protocol the controller (and later SSH) speaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from agent.model import PROTOCOL_VERSION
from tests.conftest import REPO, RunPyprov


def agent(args: list[str], stdin: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYPROV_STATE_DIR": str(state_dir)}
    return subprocess.run([sys.executable, "-m", "agent", *args], input=stdin, text=True,
                          capture_output=True, cwd=REPO, env=env, timeout=60, check=False)


def desired(target: Path, **overrides: object) -> dict[str, object]:
    document = {"kind": "DaemonConfig", "name": "d", "path": str(target),
                "settings": {"debug": True}}
    return {"protocol": PROTOCOL_VERSION, "host": "web1", "documents": [document],
            **overrides}


def test_version_handshake(pyprov: RunPyprov) -> None:
    result = pyprov("agent", "version")
    assert result.code == 0
    assert json.loads(result.stdout)["protocol"] == PROTOCOL_VERSION


def test_events_are_json_lines_and_exit_code_is_detailed(tmp_path: Path) -> None:
    target = tmp_path / "daemon.json"
    result = agent(["apply"], json.dumps(desired(target)), tmp_path / "state")
    assert result.returncode == 2, result.stderr
    (line,) = result.stdout.splitlines()
    event = json.loads(line)
    assert event["host"] == "web1"
    assert event["changed"] is True
    assert event["action"] == "create"
    assert json.loads(target.read_text()) == {"debug": True}


def test_protocol_mismatch_is_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "daemon.json"
    result = agent(["apply"], json.dumps(desired(target, protocol=99)), tmp_path / "state")
    assert result.returncode == 4
    event = json.loads(result.stdout)
    assert event["failed"] is True
    assert "protocol 99" in event["error"]
    assert f"speaks {PROTOCOL_VERSION}" in event["error"]
    assert not target.exists()
    assert not (tmp_path / "state").exists()


def test_agent_revalidates_what_it_receives(tmp_path: Path) -> None:
    bad = desired(tmp_path / "daemon.json")
    bad["documents"] = [{"kind": "Container", "name": "web", "image": "nginx",
                         "ports": ["70000:80"]}]
    result = agent(["apply"], json.dumps(bad), tmp_path / "state")
    assert result.returncode == 4
    assert "70000" in json.loads(result.stdout)["error"]
    assert not (tmp_path / "state").exists()


def test_json_logs_when_asked(tmp_path: Path) -> None:
    result = agent(["apply", "-v", "--log-format", "json"],
                   json.dumps(desired(tmp_path / "daemon.json")), tmp_path / "state")
    assert result.returncode == 2
    logs = [json.loads(line) for line in result.stderr.splitlines()]
    assert any(entry["event"] == "applying" and entry["kind"] == "DaemonConfig"
               for entry in logs)


def test_an_agent_package_in_the_current_directory_never_runs(tmp_path: Path) -> None:
    """The controller runs as root from wherever the operator stands: isolation matters."""
    evil = tmp_path / "cwd" / "agent"
    evil.mkdir(parents=True)
    marker = tmp_path / "pwned"
    for name in ("__init__.py", "__main__.py", "cli.py"):
        (evil / name).write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    manifest = tmp_path / "m.yml"
    manifest.write_text(f"kind: DaemonConfig\nname: d\npath: {tmp_path}/daemon.json\n"
                        "settings:\n  debug: true\n")
    console_script = Path(sys.executable).parent / "pyprov"
    env = {**os.environ, "PYPROV_STATE_DIR": str(tmp_path / "state")}
    for args in (["apply", str(manifest)], ["agent", "version"]):
        result = subprocess.run([str(console_script), *args], cwd=evil.parent, env=env,
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode in (0, 2), result.stdout + result.stderr
    assert not marker.exists()
    assert json.loads((tmp_path / "daemon.json").read_text()) == {"debug": True}


def test_a_resident_agent_answers_through_the_relay(tmp_path: Path) -> None:
    """`agent serve` + the controller's relay give the CLI's results, without a new agent."""
    from controller.transports.relay import relay_argv

    state = tmp_path / "state"
    server = subprocess.Popen([sys.executable, "-I", "-m", "agent", "serve", "--state-dir",
                               str(state)], cwd="/", stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        assert "serving" in server.stderr.readline()
        target = tmp_path / "daemon.json"
        request = json.dumps(desired(target)).encode()
        argv = relay_argv(sys.executable, ["apply", "--state-dir", str(state)])
        first = subprocess.run(argv, input=request, capture_output=True, timeout=60, check=False)
        assert first.returncode == 2, first.stderr
        assert json.loads(first.stdout)["action"] == "create"
        assert "served apply (exit 2)" in server.stderr.readline()
        second = subprocess.run(argv, input=request, capture_output=True, timeout=60,
                                check=False)
        assert second.returncode == 0
        assert "changed" not in json.loads(second.stdout)  # false: left out by the wire
        assert "served apply (exit 0)" in server.stderr.readline()
        assert (state / "agent.sock").stat().st_mode & 0o777 == 0o600
    finally:
        server.terminate()
        server.wait(timeout=10)
    # Nobody serving: the relay becomes the agent itself, with the same answer.
    fallback = subprocess.run(relay_argv(sys.executable, ["apply", "--state-dir", str(state)]),
                              input=json.dumps(desired(tmp_path / "daemon.json")).encode(),
                              capture_output=True, timeout=60, check=False)
    assert fallback.returncode == 0, fallback.stderr
    assert not (state / "agent.sock").exists()
