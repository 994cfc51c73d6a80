"""Finding the dockerd that reads a daemon.json, and making it take new settings.

A dockerd is identified by (pid, start time in clock ticks): a restart changes it,
so an owed restart can be recognised as done without trusting wall clocks.
Only the service manager that really runs *this* dockerd may restart it: systemd
when the unit's MainPID is this pid, the init script when its pidfile names it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONFIG = "/etc/docker/daemon.json"
DEFAULT_PIDFILE = "/var/run/docker.pid"  # the one /etc/init.d/docker uses
_RESTART_TIMEOUT = 180
_RESTART_SETTLE = 30.0


@dataclass(frozen=True)
class Dockerd:
    pid: int
    config_file: str
    manager: str | None  # "systemd:<unit>" or "service", None when nothing manages it
    start_ticks: int  # /proc/PID/stat field 22: identifies this incarnation

    @property
    def identity(self) -> tuple[int, int]:
        return (self.pid, self.start_ticks)


def _option(argv: list[str], name: str, default: str) -> str:
    for index, arg in enumerate(argv):
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
    return default


def _start_ticks(proc: Path) -> int:
    stat = (proc / "stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _systemd_unit(proc: Path, pid: int) -> str | None:
    if not Path("/run/systemd/system").is_dir() or not shutil.which("systemctl"):
        return None
    try:
        cgroups = (proc / "cgroup").read_text()
    except OSError:
        return None
    for line in cgroups.splitlines():
        unit = line.rsplit("/", 1)[-1]
        if not unit.endswith(".service"):
            continue
        shown = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", unit],
                               capture_output=True, text=True, timeout=10, check=False)
        if shown.stdout.strip() == str(pid):
            return unit
    return None


def _init_script_runs(pid: int, pidfile: str) -> bool:
    if not Path("/etc/init.d/docker").exists() or not shutil.which("service"):
        return False
    if os.path.realpath(pidfile) != os.path.realpath(DEFAULT_PIDFILE):
        return False
    try:
        return Path(pidfile).read_text().strip() == str(pid)
    except OSError:
        return False


def _manager(proc: Path, pid: int, argv: list[str]) -> str | None:
    unit = _systemd_unit(proc, pid)
    if unit is not None:
        return f"systemd:{unit}"
    if _init_script_runs(pid, _option(argv, "--pidfile", DEFAULT_PIDFILE)):
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
            argv = [a.decode("utf-8", "replace")
                    for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
            config = _option(argv, "--config-file", DEFAULT_CONFIG)
            if os.path.realpath(config) != wanted:
                continue
            pid = int(proc.name)
            return Dockerd(pid, config, _manager(proc, pid, argv), _start_ticks(proc))
        except (OSError, ValueError, IndexError):
            continue  # the process went away while we looked
    return None


def reload(dockerd: Dockerd) -> str:
    os.kill(dockerd.pid, signal.SIGHUP)
    return f"reloaded (SIGHUP to dockerd pid {dockerd.pid})"


class RestartFailed(Exception):
    pass


def restart(dockerd: Dockerd) -> str | None:
    """Restart through its service manager and see a new dockerd come up.

    ``None`` when no manager runs this dockerd; ``RestartFailed`` when the manager
    failed or the same dockerd is still running afterwards.
    """
    if dockerd.manager is None:
        return None
    if dockerd.manager.startswith("systemd:"):
        command = ["systemctl", "restart", dockerd.manager.split(":", 1)[1]]
    else:
        command = ["service", "docker", "restart"]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=_RESTART_TIMEOUT)
    except (subprocess.SubprocessError, OSError) as exc:
        raise RestartFailed(f"`{' '.join(command)}` failed: {exc}") from exc
    deadline = time.monotonic() + _RESTART_SETTLE
    while time.monotonic() < deadline:
        now = find_dockerd(dockerd.config_file)
        if now is not None and now.identity != dockerd.identity:
            return f"restarted ({' '.join(command)}; dockerd pid {now.pid})"
        time.sleep(0.2)
    raise RestartFailed(f"`{' '.join(command)}` returned, but no new dockerd came up")
