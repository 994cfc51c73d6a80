"""Finding the dockerd that reads a daemon.json, and making it take new settings."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONFIG = "/etc/docker/daemon.json"
_RESTART_TIMEOUT = 180


@dataclass(frozen=True)
class Dockerd:
    pid: int
    config_file: str
    manager: str | None  # "systemd:<unit>" or "service", None when nothing manages it
    started_at: float  # seconds since the epoch


def _config_file(argv: list[str]) -> str:
    for index, arg in enumerate(argv):
        if arg.startswith("--config-file="):
            return arg.split("=", 1)[1]
        if arg == "--config-file" and index + 1 < len(argv):
            return argv[index + 1]
    return DEFAULT_CONFIG


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


def _started_at(proc: Path) -> float:
    stat = (proc / "stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _manager(proc: Path) -> str | None:
    try:
        cgroups = (proc / "cgroup").read_text()
    except OSError:
        cgroups = ""
    for line in cgroups.splitlines():
        leaf = line.rsplit("/", 1)[-1]
        if leaf.endswith(".service") and Path("/run/systemd/system").is_dir():
            return f"systemd:{leaf}"
    if Path("/etc/init.d/docker").exists() and shutil.which("service"):
        return "service"
    return None


def find_dockerd(config_path: str) -> Dockerd | None:
    """The running dockerd whose configuration file is ``config_path``, if any."""
    wanted = os.path.realpath(config_path)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "dockerd":
                continue
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            args = [a.decode("utf-8", "replace") for a in argv if a]
            config = _config_file(args)
            if os.path.realpath(config) != wanted:
                continue
            return Dockerd(int(proc.name), config, _manager(proc), _started_at(proc))
        except (OSError, ValueError, IndexError):
            continue  # the process went away while we looked
    return None


def reload(dockerd: Dockerd) -> str:
    os.kill(dockerd.pid, signal.SIGHUP)
    return f"reloaded (SIGHUP to dockerd pid {dockerd.pid})"


def restart(dockerd: Dockerd) -> str | None:
    """Restart through its service manager; ``None`` when no manager can do it."""
    if dockerd.manager is None:
        return None
    if dockerd.manager.startswith("systemd:"):
        unit = dockerd.manager.split(":", 1)[1]
        command = ["systemctl", "restart", unit]
    else:
        command = ["service", "docker", "restart"]
    subprocess.run(command, check=True, capture_output=True, timeout=_RESTART_TIMEOUT)
    return f"restarted ({' '.join(command)})"
