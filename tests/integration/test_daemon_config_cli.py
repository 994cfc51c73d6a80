"""DaemonConfig end to end through the real CLI on real files."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import RunPyprov, write_manifest

FOREIGN = '{\n  "data-root": "/srv/docker",\n  "debug": true,\n  "exec-opts": ["a=b"]\n}\n'


def backup_files(state_dir: Path) -> list[Path]:
    return sorted(p for p in (state_dir / "backups").rglob("*") if p.is_file())


def manifest(target: Path, settings: str) -> str:
    return f"kind: DaemonConfig\nname: docker-daemon\npath: {target}\nsettings:\n{settings}"


MIRRORS = ('  registry-mirrors: ["https://mirror.example.test"]\n'
           '  insecure-registries: ["192.168.88.92:5000", "10.0.0.0/8"]\n')


def test_apply_twice_changes_then_nothing(tmp_path: Path, pyprov: RunPyprov,
                                          state_dir: Path) -> None:
    target = tmp_path / "etc" / "daemon.json"
    target.parent.mkdir()
    target.write_text(FOREIGN)
    manifests = tmp_path / "m"
    write_manifest(manifests, "daemon.yml", manifest(target, MIRRORS))

    first = pyprov("apply", str(manifests))
    assert first.code == 2, first.stderr
    data = json.loads(target.read_text())
    assert list(data) == ["data-root", "debug", "exec-opts", "registry-mirrors",
                          "insecure-registries"]
    assert data["data-root"] == "/srv/docker"
    assert data["exec-opts"] == ["a=b"]
    assert data["insecure-registries"] == ["192.168.88.92:5000", "10.0.0.0/8"]
    assert target.stat().st_mode & 0o777 == 0o644
    backups = backup_files(state_dir)
    assert [b.read_text() for b in backups] == [FOREIGN]

    content, mtime = target.read_bytes(), target.stat().st_mtime_ns
    second = pyprov("apply", str(manifests))
    assert second.code == 0, second.stdout + second.stderr
    assert "changed=0" in second.stdout
    assert "ok=1" in second.stdout
    assert target.read_bytes() == content
    assert target.stat().st_mtime_ns == mtime
    assert len(backup_files(state_dir)) == 1


def test_hand_edit_is_drift_and_apply_repairs(tmp_path: Path, pyprov: RunPyprov) -> None:
    target = tmp_path / "daemon.json"
    manifests = tmp_path / "m"
    write_manifest(manifests, "daemon.yml", manifest(target, MIRRORS))
    assert pyprov("apply", str(manifests)).code == 2

    edited = json.loads(target.read_text())
    edited["registry-mirrors"] = ["https://someone.else.test"]
    edited["log-level"] = "warn"  # a foreign key an operator added by hand
    target.write_text(json.dumps(edited))
    before = target.read_bytes()

    check = pyprov("check", str(manifests), "--diff")
    assert check.code == 2, check.stderr
    assert "registry-mirrors" in check.stdout
    assert '-    "https://someone.else.test"' in check.stdout
    assert '+    "https://mirror.example.test"' in check.stdout
    assert target.read_bytes() == before  # check changed nothing

    repair = pyprov("apply", str(manifests))
    assert repair.code == 2
    repaired = json.loads(target.read_text())
    assert repaired["registry-mirrors"] == ["https://mirror.example.test"]
    assert repaired["log-level"] == "warn"
    assert pyprov("check", str(manifests)).code == 0


def test_creates_missing_file_and_parent(tmp_path: Path, pyprov: RunPyprov) -> None:
    target = tmp_path / "etc" / "docker" / "daemon.json"
    manifests = tmp_path / "m"
    write_manifest(manifests, "daemon.yml", manifest(target, MIRRORS))
    result = pyprov("apply", str(manifests), "--output", "json")
    assert result.code == 2
    report = json.loads(result.stdout)
    (event,) = report["hosts"]["localhost"]["events"]
    assert event["action"] == "create"
    assert event["status"] == "changed"
    assert json.loads(target.read_text())["registry-mirrors"] == ["https://mirror.example.test"]


def test_dropped_key_is_removed_foreign_keys_stay(tmp_path: Path, pyprov: RunPyprov) -> None:
    target = tmp_path / "daemon.json"
    target.write_text(FOREIGN)
    manifests = tmp_path / "m"
    write_manifest(manifests, "daemon.yml", manifest(target, MIRRORS))
    assert pyprov("apply", str(manifests)).code == 2
    write_manifest(manifests, "daemon.yml", manifest(
        target, '  registry-mirrors: ["https://mirror.example.test"]\n'))
    assert pyprov("apply", str(manifests)).code == 2
    data = json.loads(target.read_text())
    assert "insecure-registries" not in data
    assert data["debug"] is True
    assert data["data-root"] == "/srv/docker"


def test_invalid_json_is_refused_then_forced(tmp_path: Path, pyprov: RunPyprov,
                                             state_dir: Path) -> None:
    target = tmp_path / "daemon.json"
    broken = b'{"debug": true,,}\n'
    target.write_bytes(broken)
    manifests = tmp_path / "m"
    write_manifest(manifests, "daemon.yml", manifest(target, MIRRORS))

    refused = pyprov("apply", str(manifests))
    assert refused.code == 4
    assert "not valid JSON" in refused.stdout
    assert "--force" in refused.stdout
    assert target.read_bytes() == broken

    forced = pyprov("apply", str(manifests), "--force")
    assert forced.code == 2, forced.stdout
    assert json.loads(target.read_text())["registry-mirrors"] == ["https://mirror.example.test"]
    assert [b.read_bytes() for b in backup_files(state_dir)] == [broken]


def test_check_on_fresh_host_creates_nothing(tmp_path: Path, pyprov: RunPyprov,
                                             state_dir: Path) -> None:
    target = tmp_path / "etc" / "daemon.json"
    manifests = tmp_path / "m"
    write_manifest(manifests, "daemon.yml", manifest(target, MIRRORS))
    result = pyprov("apply", "--check", str(manifests), "--output", "json")
    assert result.code == 2
    assert json.loads(result.stdout)["hosts"]["localhost"]["events"][0]["action"] == "create"
    assert not target.parent.exists()
    assert not state_dir.exists()


def test_backups_are_bounded(tmp_path: Path, pyprov: RunPyprov, state_dir: Path) -> None:
    target = tmp_path / "daemon.json"
    manifests = tmp_path / "m"
    for round_ in range(13):
        write_manifest(manifests, "daemon.yml", manifest(
            target, f'  labels: ["round={round_}"]\n'))
        assert pyprov("apply", str(manifests)).code == 2
    backups = backup_files(state_dir)
    assert len(backups) == 10
    assert '"round=11"' in backups[-1].read_text()  # the newest backup is the previous file
    assert all(b.stat().st_mode & 0o777 == 0o600 for b in backups)


def test_desired_state_is_stored_private(tmp_path: Path, pyprov: RunPyprov,
                                         state_dir: Path) -> None:
    manifests = tmp_path / "m"
    write_manifest(manifests, "daemon.yml", manifest(tmp_path / "d.json", MIRRORS))
    assert pyprov("apply", str(manifests)).code == 2
    stored = state_dir / "desired.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert json.loads(stored.read_text())["documents"][0]["name"] == "docker-daemon"


def test_unsupported_kind_fails_but_others_converge(tmp_path: Path, pyprov: RunPyprov) -> None:
    target = tmp_path / "daemon.json"
    manifests = tmp_path / "m"
    write_manifest(manifests, "a.yml", "kind: Container\nname: web\nimage: nginx:1.25\n")
    write_manifest(manifests, "b.yml", manifest(target, MIRRORS))
    result = pyprov("apply", str(manifests))
    assert result.code == 6, result.stdout  # changed and failed
    assert target.exists()
    assert result.stdout.index("DaemonConfig/") < result.stdout.index("Container/web")
