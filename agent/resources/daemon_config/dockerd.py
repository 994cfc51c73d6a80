"""Finding the dockerd that reads a daemon.json, and making it take new settings.

A dockerd counts only when it is really dockerd (its executable) and its config file,
seen through its own root and working directory (``/proc/PID/root``, ``/proc/PID/cwd``:
other mount namespaces included), is the very file pyprov writes (same device and
inode). It is identified by (pid, start ticks), so a restart is recognised without
wall clocks, and it is signalled through a pidfd after re-checking that identity, so
a recycled pid is never hit. Only the service manager that runs *this* dockerd may
restart it: systemd when the unit's MainPID is this pid, the init script when its
pidfile names it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from agent.errors import RestartFailed

DEFAULT_CONFIG = "/etc/docker/daemon.json"
DEFAULT_PIDFILE = "/var/run/docker.pid"  # the one /etc/init.d/docker uses
_RESTART_TIMEOUT = 180
_RESTART_SETTLE = 30.0
_QUERY_TIMEOUT = 10


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


def _start_ticks(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _systemd_unit(pid: int) -> str | None:
    if not Path("/run/systemd/system").is_dir() or not shutil.which("systemctl"):
        return None
    try:
        cgroups = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return None
    for line in cgroups.splitlines():
        unit = line.rsplit("/", 1)[-1]
        if not unit.endswith(".service"):
            continue
        try:
            shown = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", unit],
                                   capture_output=True, text=True, timeout=_QUERY_TIMEOUT,
                                   check=False)
        except (subprocess.SubprocessError, OSError):
            return None
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


def _manager(pid: int, argv: list[str]) -> str | None:
    unit = _systemd_unit(pid)
    if unit is not None:
        return f"systemd:{unit}"
    if _init_script_runs(pid, _option(argv, "--pidfile", DEFAULT_PIDFILE)):
        return "service"
    return None


def _reads(pid: int, config: str, wanted: os.stat_result) -> bool:
    """Is ``config``, as process ``pid`` resolves it, the file ``wanted`` describes?"""
    base = f"/proc/{pid}/root" if config.startswith("/") else f"/proc/{pid}/cwd"
    try:
        seen = Path(f"{base}/{config.lstrip('/')}").stat()
    except OSError:
        return False
    return (seen.st_dev, seen.st_ino) == (wanted.st_dev, wanted.st_ino)


def _is_dockerd(pid: int) -> bool:
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() != "dockerd":
            return False
        return Path(f"/proc/{pid}/exe").readlink().name.startswith("dockerd")
    except OSError:
        return False


def find_dockerd(config_path: str) -> Dockerd | None:
    """The running dockerd whose configuration file is ``config_path``, if any.

    A file that does not exist yet is matched by path (dockerd then runs on defaults).
    """
    try:
        wanted: os.stat_result | None = Path(config_path).stat()
    except OSError:
        wanted = None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or not _is_dockerd(pid := int(proc.name)):
            continue
        try:
            argv = [a.decode("utf-8", "replace")
                    for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
            config = _option(argv, "--config-file", DEFAULT_CONFIG)
            matches = (_reads(pid, config, wanted) if wanted is not None
                       else os.path.realpath(config) == os.path.realpath(config_path))
            if matches:
                return Dockerd(pid, config, _manager(pid, argv), _start_ticks(pid))
        except (OSError, ValueError, IndexError):
            continue  # the process went away while we looked
    return None


def reload(dockerd: Dockerd) -> str:
    """SIGHUP through a pidfd, after checking the pid is still that dockerd."""
    try:
        fd = os.pidfd_open(dockerd.pid)
    except ProcessLookupError:
        return f"dockerd pid {dockerd.pid} exited; the settings apply when it starts"
    try:
        if _start_ticks(dockerd.pid) != dockerd.start_ticks:
            return f"dockerd pid {dockerd.pid} exited; the settings apply when it starts"
        signal.pidfd_send_signal(fd, signal.SIGHUP)
    except (ProcessLookupError, FileNotFoundError):
        return f"dockerd pid {dockerd.pid} exited; the settings apply when it starts"
    finally:
        os.close(fd)
    return f"reloaded (SIGHUP to dockerd pid {dockerd.pid})"


def restart(dockerd: Dockerd, config_path: str) -> str | None:
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
        now = find_dockerd(config_path)
        if now is not None and now.identity != dockerd.identity:
            return f"restarted ({' '.join(command)}; dockerd pid {now.pid})"
        time.sleep(0.2)
    raise RestartFailed(f"`{' '.join(command)}` returned, but no new dockerd came up")
