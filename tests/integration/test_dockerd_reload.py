"""DaemonConfig against a REAL dockerd: SIGHUP for reloadable keys, an owed restart otherwise.

The dockerd runs isolated (see dockerd_fixture.py). Every ``pyprov`` run gets a PATH on
which ``service`` and ``systemctl`` are recording stubs that do nothing (or, to model a
host with no service manager, ``service`` is absent), so whatever the agent decides it
never restarts (or starts) this machine's own docker service: docker.io installs
/etc/init.d/docker here, and the agent calls service managers through PATH.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, RunPyprov, write_manifest
from tests.integration.dockerd_fixture import IsolatedDockerd, isolated_dockerd
from tests.waiting import wait_for

pytestmark = pytest.mark.dockerd

MIRROR = "https://mirror.example.test"
INSECURE = "10.99.0.5:5000"
REGISTRY_SETTINGS = {"registry-mirrors": [MIRROR], "insecure-registries": [INSECURE]}
RESTART_SETTINGS = {"log-driver": "none"}  # not reloadable; dockerd starts with it
NOT_RUNNING = "not running; the settings apply when it starts"
SETTLE = 0.5  # a SIGHUP, had one been sent, is logged by dockerd within milliseconds

_STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> {calls}
echo "test stub: refusing to touch the host's services" >&2
exit 1
"""


@dataclass(frozen=True)
class ServiceGuard:
    """Recording stand-ins for the service managers the agent may call."""

    env: dict[str, str]
    calls_file: Path

    @property
    def calls(self) -> list[str]:
        if not self.calls_file.exists():
            return []
        return self.calls_file.read_text().splitlines()


def _guard(tmp_path: Path, name: str, stubs: tuple[str, ...], keep_real_path: bool) -> ServiceGuard:
    bin_dir = tmp_path / name
    bin_dir.mkdir()
    calls = tmp_path / f"{name}.calls"
    for stub in stubs:
        path = bin_dir / stub
        path.write_text(_STUB.format(calls=shlex.quote(str(calls))))
        path.chmod(0o755)
    real = os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    if not keep_real_path:  # drop every directory holding a `service` (/usr/sbin, /sbin)
        real = [d for d in real if d and not os.access(Path(d) / "service", os.X_OK)]
    return ServiceGuard({"PATH": os.pathsep.join([str(bin_dir), *real])}, calls)


@pytest.fixture
def guard(tmp_path: Path) -> ServiceGuard:
    """`service` and `systemctl` both resolve to stubs that record and fail."""
    return _guard(tmp_path, "guard-bin", ("service", "systemctl"), keep_real_path=True)


@pytest.fixture
def no_service_manager(tmp_path: Path) -> ServiceGuard:
    """No `service` on PATH at all (and no systemd here): nothing can restart dockerd."""
    guard = _guard(tmp_path, "bare-bin", ("systemctl",), keep_real_path=False)
    assert shutil.which("service", path=guard.env["PATH"]) is None
    assert not Path("/run/systemd/system").is_dir(), "this test expects no running systemd"
    return guard


@pytest.fixture
def dockerd() -> Iterator[IsolatedDockerd]:
    with isolated_dockerd({"debug": False}) as daemon:
        yield daemon


def _manifests(directory: Path, target: Path, settings: dict[str, Any]) -> Path:
    lines = "".join(f"  {key}: {json.dumps(value)}\n" for key, value in settings.items())
    return write_manifest(directory, "daemon.yml", f"kind: DaemonConfig\nname: docker-daemon\n"
                          f"path: {target}\nsettings:\n{lines}").parent


def _apply(pyprov: RunPyprov, manifests: Path,
           guard: ServiceGuard) -> tuple[Result, dict[str, Any]]:
    """Run ``pyprov apply --output json``; the one DaemonConfig event."""
    result = pyprov("apply", str(manifests), "--output", "json", env=guard.env, timeout=60)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"not a JSON report (exit {result.code}):\n{result.stdout}\n{result.stderr}")
    assert report["exit_code"] == result.code
    events = [e for host in report["hosts"].values() for e in host["events"]
              if e["kind"] == "DaemonConfig"]
    assert len(events) == 1, result.stdout + result.stderr
    return result, events[0]


def _registry(info: dict[str, Any]) -> dict[str, Any]:
    return {"registry": info["RegistryConfig"], "debug": info["Debug"],
            "log_driver": info["LoggingDriver"]}


def _has_registry_settings(info: dict[str, Any]) -> bool:
    registry = info["RegistryConfig"]
    index = registry["IndexConfigs"].get(INSECURE)
    return f"{MIRROR}/" in registry["Mirrors"] and index is not None and index["Secure"] is False


def _info_if(dockerd: IsolatedDockerd, wanted: Callable[[dict[str, Any]], bool]
             ) -> dict[str, Any] | None:
    info = dockerd.info()
    return info if wanted(info) else None


def test_reloadable_keys_reach_the_running_dockerd_by_sighup(
        tmp_path: Path, pyprov: RunPyprov, dockerd: IsolatedDockerd, guard: ServiceGuard) -> None:
    pid = dockerd.pid
    assert not _has_registry_settings(dockerd.info())
    manifests = _manifests(tmp_path / "m", dockerd.config, REGISTRY_SETTINGS)

    result, event = _apply(pyprov, manifests, guard)
    assert result.code == 2, result.stdout + result.stderr
    assert event["status"] == "changed"
    assert event["details"]["dockerd"] == f"reloaded (SIGHUP to dockerd pid {pid})"
    assert json.loads(dockerd.config.read_text()) == {"debug": False, **REGISTRY_SETTINGS}
    # dockerd reads the new file: the mirror (with the slash dockerd appends) and the
    # insecure registry show up in /info, from the same process.
    info = wait_for(lambda: _info_if(dockerd, _has_registry_settings),
                    f"{MIRROR}/ and {INSECURE} in GET /info", timeout=10)
    assert dockerd.pid == pid, "dockerd was restarted, not reloaded"
    assert dockerd.reload_count() == 1
    assert guard.calls == []

    content = dockerd.config.read_bytes()
    again, event = _apply(pyprov, manifests, guard)
    assert again.code == 0, again.stdout + again.stderr
    assert event["status"] == "ok"
    assert "dockerd" not in event.get("details", {})
    time.sleep(SETTLE)
    assert dockerd.reload_count() == 1, "an unchanged pass sent dockerd a SIGHUP"
    assert dockerd.pid == pid
    assert _registry(dockerd.info()) == _registry(info)
    assert dockerd.config.read_bytes() == content
    assert guard.calls == []


def test_non_reloadable_key_is_written_and_the_restart_stays_owed_until_done(
        tmp_path: Path, pyprov: RunPyprov, dockerd: IsolatedDockerd,
        no_service_manager: ServiceGuard) -> None:
    pid = dockerd.pid
    assert dockerd.info()["LoggingDriver"] == "json-file"
    manifests = _manifests(tmp_path / "m", dockerd.config, RESTART_SETTINGS)
    needs_restart = (f"{dockerd.config} is written, but dockerd pid {pid} needs a restart for "
                     "these keys and no service manager runs it: restart it by hand (the next "
                     "pass retries)")

    # The file changes but the resource fails: changes and failures, exit 6.
    first, event = _apply(pyprov, manifests, no_service_manager)
    assert first.code == 6, first.stdout + first.stderr
    assert event["status"] == "failed"
    assert event["error"] == needs_restart
    assert json.loads(dockerd.config.read_text()) == {"debug": False, **RESTART_SETTINGS}
    content, mtime = dockerd.config.read_bytes(), dockerd.config.stat().st_mtime_ns
    time.sleep(SETTLE)
    assert dockerd.pid == pid
    assert dockerd.reload_count() == 0, "a non-reloadable change must not be SIGHUPed"
    assert dockerd.info()["LoggingDriver"] == "json-file"

    # The file is right now, but the restart is still owed: the next pass retries it and
    # fails the same way instead of reporting ok; the file is not rewritten, so nothing
    # changed: exit 4.
    second, event = _apply(pyprov, manifests, no_service_manager)
    assert second.code == 4, second.stdout + second.stderr
    assert event["status"] == "failed"
    assert event["error"] == needs_restart.replace("is written", "is up to date")
    assert dockerd.config.read_bytes() == content
    assert dockerd.config.stat().st_mtime_ns == mtime
    assert dockerd.pid == pid

    # The operator restarts dockerd by hand, right away: it runs with the new key, and the
    # next pass has nothing left to do (the owed restart is tied to the old pid and start).
    dockerd.restart()
    assert dockerd.pid != pid
    assert dockerd.info()["LoggingDriver"] == "none"
    third, event = _apply(pyprov, manifests, no_service_manager)
    assert third.code == 0, third.stdout + third.stderr
    assert event["status"] == "ok"
    assert dockerd.config.read_bytes() == content
    assert no_service_manager.calls == []


def test_written_file_with_owed_restart_reports_the_change(
        tmp_path: Path, pyprov: RunPyprov, dockerd: IsolatedDockerd, state_dir: Path,
        no_service_manager: ServiceGuard) -> None:
    manifests = _manifests(tmp_path / "m", dockerd.config, RESTART_SETTINGS)
    result, event = _apply(pyprov, manifests, no_service_manager)
    assert json.loads(dockerd.config.read_text()) == {"debug": False, **RESTART_SETTINGS}
    assert event["status"] == "failed"
    assert result.code == 6, "the file changed and the restart failed: changes and failures"
    assert event.get("action") == "update"
    assert event.get("changes") == ["log-driver"]
    backups = list((state_dir / "backups").rglob("*"))
    assert event.get("details", {}).get("backup") in {str(b) for b in backups}


def test_dockerd_reading_another_file_is_not_signalled(
        tmp_path: Path, pyprov: RunPyprov, dockerd: IsolatedDockerd, guard: ServiceGuard) -> None:
    pid = dockerd.pid
    before = _registry(dockerd.info())
    other = tmp_path / "other" / "daemon.json"
    other.parent.mkdir()
    other.write_text('{"debug": false}\n')
    manifests = _manifests(tmp_path / "m", other, REGISTRY_SETTINGS)

    result, event = _apply(pyprov, manifests, guard)
    assert result.code == 2, result.stdout + result.stderr
    assert event["status"] == "changed"
    assert event["details"]["dockerd"] == NOT_RUNNING
    assert json.loads(other.read_text()) == {"debug": False, **REGISTRY_SETTINGS}
    time.sleep(SETTLE)
    assert dockerd.reload_count() == 0
    assert dockerd.pid == pid
    assert _registry(dockerd.info()) == before
    assert json.loads(dockerd.config.read_text()) == {"debug": False}
    assert guard.calls == []


def test_dockerd_not_started_by_the_init_script_is_not_restarted_through_it(
        tmp_path: Path, pyprov: RunPyprov, dockerd: IsolatedDockerd, guard: ServiceGuard) -> None:
    if not Path("/etc/init.d/docker").exists():
        pytest.fail("docker.io's /etc/init.d/docker is missing: this test needs it", pytrace=False)
    pid = dockerd.pid
    manifests = _manifests(tmp_path / "m", dockerd.config, RESTART_SETTINGS)

    result, event = _apply(pyprov, manifests, guard)  # `service` here is a recording stub
    assert json.loads(dockerd.config.read_text()) == {"debug": False, **RESTART_SETTINGS}
    assert dockerd.pid == pid
    assert guard.calls == [], "the agent ran the init script for a dockerd it did not start"
    assert result.code == 6  # written (changed) and restart impossible (failed)
    assert event["status"] == "failed"
    assert f"dockerd pid {pid} needs a restart" in event["error"]


def test_a_symlink_to_the_config_file_updates_what_dockerd_reads(
        tmp_path: Path, pyprov: RunPyprov, dockerd: IsolatedDockerd, guard: ServiceGuard) -> None:
    link = tmp_path / "etc-docker" / "daemon.json"
    link.parent.mkdir()
    link.symlink_to(dockerd.config)
    manifests = _manifests(tmp_path / "m", link, REGISTRY_SETTINGS)

    result, event = _apply(pyprov, manifests, guard)
    assert result.code == 2, result.stdout + result.stderr
    assert event["details"]["dockerd"] == f"reloaded (SIGHUP to dockerd pid {dockerd.pid})"
    assert json.loads(dockerd.config.read_text()) == {"debug": False, **REGISTRY_SETTINGS}, (
        "dockerd was told to reload, but the file it reads did not change")
    assert link.is_symlink()
    wait_for(lambda: _info_if(dockerd, _has_registry_settings),
             f"{MIRROR}/ and {INSECURE} in GET /info", timeout=10)
