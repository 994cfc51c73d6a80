"""A real dockerd for integration tests, isolated from the host it runs on.

Each daemon gets its own network namespace (so its bridge and iptables work, if
any, stay there), its own mount namespace (``ip netns exec`` makes one; the
mounts dockerd makes die with it), and a private temp directory holding its
``--data-root``, ``--exec-root``, ``--pidfile``, API socket and ``--config-file``.
dockerd starts its own managed containerd, whose root and state live under those
dirs too. Inside the namespaces, tmpfs covers ``/run`` (dockerd creates
``/run/docker/plugins``) and ``/etc/docker`` (dockerd 20.10 creates its trust key
``/etc/docker/key.json`` and has no flag to move it), and the cgroup mounts that
``ip netns exec`` drops (it remounts /sys) are mounted again.

The process is really named ``dockerd``: ``ip netns exec`` execs ``sh``, which
execs dockerd, so the pid we hold is dockerd's and its ``comm`` is ``dockerd``,
as the agent's scan of /proc expects.

A daemon that does not come up FAILS the test with its log: CI installs docker.io,
so a missing prerequisite is an error, never a skip.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.waiting import wait_for

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
RELOAD_LOG_LINE = "Got signal to reload configuration"

# As little as possible: no bridge, no iptables/forwarding changes, no overlay mounts.
DOCKERD_OPTIONS = (
    "--bridge=none",
    "--iptables=false",
    "--ip-forward=false",
    "--ip-masq=false",
    "--storage-driver=vfs",
)

_NOISE = ("[core]", "loading plugin", "skip loading plugin")


def _require(condition: bool, message: str) -> None:
    if not condition:
        pytest.fail(f"dockerd fixture: {message}", pytrace=False)


def _cgroup_mount_commands() -> list[str]:
    """Shell commands re-creating this host's /sys/fs/cgroup mounts (v1, hybrid or v2)."""
    commands = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _source, target, fstype, options, *_ = line.split()
        if target != "/sys/fs/cgroup" and not target.startswith("/sys/fs/cgroup/"):
            continue
        if fstype == "tmpfs":
            commands.append(f"mount -n -t tmpfs -o mode=755 cgroup {shlex.quote(target)}")
        elif fstype in ("cgroup", "cgroup2"):
            commands.append(f"mkdir -p {shlex.quote(target)}")
            commands.append(f"mount -n -t {fstype} -o {shlex.quote(options)} {fstype} "
                            f"{shlex.quote(target)}")
    return commands


def _wrapper_script() -> str:
    return "\n".join([
        "set -e",
        "mount -n -t tmpfs -o mode=755 tmpfs /run",
        "mount -n -t tmpfs -o mode=700 tmpfs /etc/docker",
        *_cgroup_mount_commands(),
        'exec "$@"',
    ])


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = str(socket_path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _netns_inode(name: str) -> tuple[int, int]:
    info = Path(f"/run/netns/{name}").stat()
    return info.st_dev, info.st_ino


def _pids_in_netns(netns: tuple[int, int]) -> list[int]:
    """Processes living in our network namespace: only ever ones we started."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            info = (proc / "ns" / "net").stat()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (info.st_dev, info.st_ino) == netns and state != "Z":
            pids.append(int(proc.name))
    return pids


def _mounts_under(root: Path) -> list[str]:
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4].replace("\\040", " ")
        if mount_point == str(root) or mount_point.startswith(f"{root}/"):
            found.append(mount_point)
    return found



class IsolatedDockerd:
    """One dockerd in its own namespaces and temp dirs; ``start``/``stop`` can repeat."""

    def __init__(self, root: Path, netns: str) -> None:
        self.root = root
        self.netns = netns
        self.config = root / "daemon.json"
        self.socket = root / "docker.sock"
        self.log = root / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._netns_id = _netns_inode(netns)
        self._starts = 0

    @property
    def command(self) -> list[str]:
        """The dockerd command line (run inside ``ip netns exec NS sh -c WRAPPER``)."""
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        return [
            dockerd,
            "--config-file", str(self.config),
            "--data-root", str(self.root / "data"),
            "--exec-root", str(self.root / "exec"),
            "--pidfile", str(self.root / "dockerd.pid"),
            "-H", f"unix://{self.socket}",
            *DOCKERD_OPTIONS,
        ]

    @property
    def pid(self) -> int:
        process = self.process
        if process is None or process.poll() is not None:
            raise AssertionError("dockerd is not running")
        return process.pid

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self._starts += 1
        with self.log.open("ab") as log:
            log.write(f"===== start {self._starts}: {shlex.join(self.command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, "sh", "-c", _wrapper_script(), "sh",
                 *self.command],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ping():
            if self.process.poll() is not None:
                self._fail(f"dockerd exited with code {self.process.returncode} before "
                           "answering /_ping")
            if time.monotonic() > deadline:
                self._fail(f"dockerd did not answer /_ping within {START_TIMEOUT:.0f}s")
            time.sleep(0.05)
        proc = Path(f"/proc/{self.process.pid}")
        comm = (proc / "comm").read_text().strip()
        argv = (proc / "cmdline").read_bytes().split(b"\0")
        if comm != "dockerd" or str(self.config).encode() not in argv:
            self._fail(f"pid {self.process.pid} is {comm!r} {argv!r}, not our dockerd")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL; then anything left in our namespace (its containerd)."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        leftovers = _pids_in_netns(self._netns_id)
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if leftovers:
            wait_for(lambda: not _pids_in_netns(self._netns_id),
                     f"processes {leftovers} in netns {self.netns} to die", timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _fail(self, message: str) -> None:
        self.stop()
        pytest.fail(f"{message}\ncommand: {shlex.join(self.command)}\n"
                    f"--- dockerd log ({self.log}, removed at teardown) ---\n"
                    f"{self.log_tail()}", pytrace=False)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        useful = [line for line in text.splitlines() if not any(n in line for n in _NOISE)]
        return "\n".join(useful[-lines:])

    def reload_count(self) -> int:
        """SIGHUPs dockerd received (it logs each one)."""
        return self.log.read_text(errors="replace").count(RELOAD_LOG_LINE)

    def api(self, method: str, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        connection = _UnixHTTPConnection(self.socket, timeout)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _ping(self) -> bool:
        try:
            status, body = self.api("GET", "/_ping", timeout=1.0)
        except OSError:
            return False
        return status == 200 and body == b"OK"

    def info(self) -> dict[str, Any]:
        status, body = self.api("GET", "/info")
        assert status == 200, body
        info: dict[str, Any] = json.loads(body)
        return info


@contextlib.contextmanager
def isolated_dockerd(initial_config: dict[str, Any]) -> Iterator[IsolatedDockerd]:
    """A started dockerd reading ``initial_config``; everything removed afterwards."""
    _require(os.geteuid() == 0, "needs root (dockerd and `ip netns`)")
    _require(shutil.which("dockerd") is not None or Path("/usr/sbin/dockerd").exists(),
             "dockerd is not installed (CI installs Debian's docker.io)")
    _require(shutil.which("ip") is not None, "`ip` is not installed (iproute2)")
    _require(Path("/etc/docker").is_dir(),
             "/etc/docker is missing (docker.io ships it; the fixture hides it under tmpfs)")
    # Short: containerd's sockets under --exec-root must fit in sun_path (108 bytes).
    root = Path(tempfile.mkdtemp(prefix="pyprov-dockerd-", dir="/tmp"))
    netns = f"pyprov-test-{os.getpid()}-{secrets.token_hex(3)}"
    daemon: IsolatedDockerd | None = None
    try:
        (root / "daemon.json").write_text(json.dumps(initial_config, indent=2) + "\n")
        subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True)
        daemon = IsolatedDockerd(root, netns)
        daemon.start()
        yield daemon
    finally:
        try:
            if daemon is not None:
                daemon.stop()
        finally:
            for mount_point in sorted(_mounts_under(root), key=len, reverse=True):
                subprocess.run(["umount", "-l", mount_point], check=False, capture_output=True)
            subprocess.run(["ip", "netns", "delete", netns], check=False, capture_output=True)
            shutil.rmtree(root)
