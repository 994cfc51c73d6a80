"""A fleet of simulated hosts on this machine, each a real ``sshd`` in its own namespaces.

Layout (everything lives in namespaces and directories the fleet creates, nothing is
added to the machine's own network or file systems)::

    netns LAN         bridge br0, one veth port per member (v-ctl, v-h01, v-h02, ...)
    netns CONTROLLER  eth0 = SUBNET.2        <- tests run the controller side here
    netns h01         eth0 = SUBNET.11, sshd on :22
    netns h02         eth0 = SUBNET.12, sshd on :22
    ...

Every host's ``sshd`` runs as ``ip netns exec NS unshare --mount --uts --propagation
private sh -c '<bind mounts>; exec /usr/sbin/sshd -D -e -f CONFIG -o PidFile=...'``, so
the sshd and every session it spawns see the host's own hostname and, bind-mounted
from ``DIR/hosts/<name>/``:

    /etc/docker        <- etc-docker/
    /etc/cron.d        <- etc-cron.d/      (the drift cron entry bootstrap installs)
    /etc/systemd/system <- etc-systemd-system/ (the agent's unit bootstrap installs)
    /opt/pyprov        <- opt-pyprov/
    /var/lib/pyprov    <- var-lib-pyprov/
    /run               <- run/          (holds /run/sshd, sshd's privilege separation dir)
    /root              <- root-home/    (fresh: this machine's root dotfiles stay out)
    /etc/hostname      <- hostname
    /var/log/{wtmp,btmp,lastlog} <- log/...  (sshd records logins there; not on the machine)

A bind target missing on this machine (``/opt/pyprov`` usually is) is created inside an
overlay of its nearest existing parent, in that mount namespace only: the machine's own
``/opt`` is never written.

The controller netns is entered with ``nsenter --net=...`` (:meth:`Fleet.run_in_controller`),
which switches the network namespace only: unlike ``ip netns exec`` it does not remount
``/sys`` (which drops the cgroup mounts) and costs no extra mount namespace.

The fleet's whole description is kept in ``DIR/fleet.json``, so another process can take
over with :meth:`Fleet.attach` (``python -m tests.fleet down --dir DIR`` does).

Failures raise :class:`FleetError` carrying the sshd log or the failing command's stderr;
the pytest fixtures turn them into failures, never skips.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import ipaddress
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tests.waiting import poll

__all__ = [
    "DEFAULT_HOSTS",
    "SSHD",
    "Fleet",
    "FleetError",
    "Host",
    "HostDirs",
    "check_prerequisites",
    "known_hosts_name",
    "reap_stale_fleets",
]

T = TypeVar("T")

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
DEFAULT_HOSTS = 3
MAX_HOSTS = 200
SSH_PORT = 22
CONTROLLER_OCTET = 2
FIRST_HOST_OCTET = 11
START_TIMEOUT = 20.0  # for all hosts of one start, which run in parallel
STOP_TIMEOUT = 5.0
STATE_FILE = "fleet.json"
NETNS_DIR = Path("/run/netns")
NETNS_PREFIX = "pyprov-fleet-"  # then OWNERPID-HEX-{lan,ctl,h01,...}
HOST_KEY_TYPES = ("ed25519", "ecdsa")
LOGIN_RECORDS = ("/var/log/wtmp", "/var/log/btmp", "/var/log/lastlog")
_CLONE_NEWNET = 0x40000000
_REQUIRED_TOOLS = ("ip", "unshare", "nsenter", "mount", "ssh", "ssh-keygen")


class FleetError(RuntimeError):
    """The fleet could not be brought up, changed or torn down; the message says why."""


def known_hosts_name(address: str, port: int = SSH_PORT) -> str:
    """The host field OpenSSH (and paramiko) look up: ``addr`` for 22, else ``[addr]:port``."""
    return address if port == SSH_PORT else f"[{address}]:{port}"


def check_prerequisites() -> None:
    """Raise :class:`FleetError` unless this process can build a fleet (root, tools)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("must run as root (network namespaces, mounts, sshd)")
    if not os.access(SSHD, os.X_OK):
        problems.append(f"{SSHD} is missing: install openssh-server")
    problems.extend(f"`{tool}` is not on PATH" for tool in _REQUIRED_TOOLS
                    if shutil.which(tool) is None)
    if problems:
        raise FleetError("test fleet prerequisites: " + "; ".join(problems))


@dataclass(frozen=True)
class HostDirs:
    """A host's private directories on this machine (all under ``DIR/hosts/<name>/``)."""

    root: Path
    etc_docker: Path      # the host's /etc/docker
    etc_cron_d: Path      # the host's /etc/cron.d
    etc_systemd: Path     # the host's /etc/systemd/system
    opt_pyprov: Path      # the host's /opt/pyprov
    var_lib_pyprov: Path  # the host's /var/lib/pyprov
    run: Path             # the host's /run (holds sshd/, the privilege separation dir)
    root_home: Path       # the host's /root: fresh, empty (not this machine's dotfiles)
    ssh: Path             # sshd_config and host keys
    overlay: Path         # upper/work dirs of overlays made for missing bind targets

    @classmethod
    def under(cls, root: Path) -> HostDirs:
        return cls(root=root, etc_docker=root / "etc-docker", etc_cron_d=root / "etc-cron.d",
                   etc_systemd=root / "etc-systemd-system", opt_pyprov=root / "opt-pyprov",
                   var_lib_pyprov=root / "var-lib-pyprov", run=root / "run",
                   root_home=root / "root-home",
                   ssh=root / "ssh", overlay=root / "overlay")

    @property
    def sshd_config(self) -> Path:
        return self.ssh / "sshd_config"

    @property
    def sshd_log(self) -> Path:
        """sshd's stderr (``-e``), appended to by every start; kept until teardown."""
        return self.root / "sshd.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "sshd.pid"

    @property
    def hostname_file(self) -> Path:
        return self.root / "hostname"

    def host_key(self, key_type: str) -> Path:
        return self.ssh / f"ssh_host_{key_type}_key"

    def binds(self) -> list[tuple[Path, str]]:
        """(source on this machine, target inside the host) for every bind mount."""
        binds = [(self.run, "/run"), (self.etc_docker, "/etc/docker"),
                 (self.etc_cron_d, "/etc/cron.d"), (self.etc_systemd, "/etc/systemd/system"),
                 (self.opt_pyprov, "/opt/pyprov"), (self.var_lib_pyprov, "/var/lib/pyprov"),
                 (self.root_home, "/root"), (self.hostname_file, "/etc/hostname")]
        binds.extend((self.root / "log" / Path(record).name, record)
                     for record in LOGIN_RECORDS if Path(record).is_file())
        return binds

    def service_dirs(self) -> tuple[Path, Path]:
        """Where bootstrap installs the agent's systemd unit and drift cron entry."""
        return self.etc_cron_d, self.etc_systemd

    def state_dirs(self) -> tuple[Path, Path, Path]:
        """The dirs a provisioning run changes: /etc/docker, /opt/pyprov, /var/lib/pyprov."""
        return self.etc_docker, self.opt_pyprov, self.var_lib_pyprov

    def as_json(self) -> dict[str, str]:
        return {"root": str(self.root), "etc_docker": str(self.etc_docker),
                "etc_cron_d": str(self.etc_cron_d), "etc_systemd": str(self.etc_systemd),
                "opt_pyprov": str(self.opt_pyprov), "var_lib_pyprov": str(self.var_lib_pyprov),
                "run": str(self.run), "root_home": str(self.root_home), "ssh": str(self.ssh),
                "sshd_log": str(self.sshd_log),
                "sshd_config": str(self.sshd_config)}


@dataclass(frozen=True)
class _ProcRef:
    """A process we started, identified by pid and start time (pids get reused)."""

    pid: int
    start_time: str

    @classmethod
    def of(cls, pid: int) -> _ProcRef | None:
        stat = _proc_stat(pid)
        return None if stat is None or stat[0] == "Z" else cls(pid, stat[1])

    def alive(self) -> bool:
        stat = _proc_stat(self.pid)
        return stat is not None and stat[0] != "Z" and stat[1] == self.start_time


class Host:
    """One simulated host. Read its fields; change it through :class:`Fleet` methods."""

    def __init__(self, name: str, address: str, netns: str, dirs: HostDirs,
                 port: int = SSH_PORT) -> None:
        self.name = name
        self.address = address
        self.port = port
        self.netns = netns
        self.dirs = dirs
        self.lan_port = f"v-{name}"  # its veth end on the LAN bridge
        self._popen: subprocess.Popen[bytes] | None = None
        self._proc: _ProcRef | None = None
        # Open fds on the mount namespaces of sshds we started: they pin each namespace, so
        # its id cannot be reused by an unrelated one before teardown kills its members.
        self._mount_ns_fds: dict[tuple[int, int], int] = {}
        self.connected = True

    def __repr__(self) -> str:
        return f"Host({self.name!r}, {self.address}:{self.port}, sshd_pid={self.sshd_pid})"

    @property
    def sshd_pid(self) -> int | None:
        """The listening sshd's pid, or ``None`` when it is not running."""
        if self._popen is not None and self._popen.poll() is not None:
            return None
        if self._proc is None or not self._proc.alive():
            return None
        return self._proc.pid

    @property
    def known_hosts_name(self) -> str:
        return known_hosts_name(self.address, self.port)

    def public_host_key(self, key_type: str = "ed25519") -> str:
        """``TYPE BASE64`` of the host key sshd currently serves."""
        algorithm, blob, *_ = self.dirs.host_key(key_type).with_suffix(".pub").read_text().split()
        return f"{algorithm} {blob}"

    def known_hosts_lines(self) -> list[str]:
        return [f"{self.known_hosts_name} {self.public_host_key(t)}" for t in HOST_KEY_TYPES]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "port": self.port,
                "netns": self.netns, "sshd_pid": self.sshd_pid, "connected": self.connected,
                "dirs": self.dirs.as_json()}

    def _state(self) -> dict[str, Any]:
        return {**self.describe(),
                "proc": None if self._proc is None else [self._proc.pid, self._proc.start_time]}

    def _release_mount_namespaces(self) -> None:
        for fd in self._mount_ns_fds.values():
            os.close(fd)
        self._mount_ns_fds.clear()


class Fleet:
    """A running fleet: hosts, the controller netns, keys, known_hosts; see the module doc.

    Build one with :meth:`create` (or take over a running one with :meth:`attach`) and
    always end it with :meth:`destroy` (or use it as a context manager).
    """

    def __init__(self, directory: Path, network: ipaddress.IPv4Network, ns_prefix: str,
                 names: Sequence[str]) -> None:
        self.directory = directory
        self.network = network
        self.lan_netns = f"{ns_prefix}-lan"
        self.controller_netns = f"{ns_prefix}-ctl"
        self.controller_address = str(network[CONTROLLER_OCTET])
        self.client_key = directory / "id_ed25519"
        self.authorized_keys = directory / "authorized_keys"
        self.known_hosts = directory / "known_hosts"
        self.hosts: tuple[Host, ...] = tuple(
            Host(name, str(network[FIRST_HOST_OCTET + i]), f"{ns_prefix}-{name}",
                 HostDirs.under(directory / "hosts" / name))
            for i, name in enumerate(names))
        self._by_name = {host.name: host for host in self.hosts}
        self._netns_created: list[str] = []
        self._destroyed = False

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def create(cls, hosts: int = DEFAULT_HOSTS, directory: Path | str | None = None, *,
               subnet: str | None = None) -> Fleet:
        """Bring up ``hosts`` hosts, all answering SSH, or raise :class:`FleetError`.

        ``directory`` (absent or empty; created) holds everything and is removed by
        :meth:`destroy`; by default a new ``pyprov-fleet-*`` in /dev/shm if that is a
        tmpfs, else in /tmp (on this machine's ext4, unlinking the ~25 files of a host
        takes ~70 ms: a 30-host teardown spends 2 s in ``rmtree`` there, 0.03 s on tmpfs).
        ``subnet`` defaults to ``10.213.X.0/24`` with X from the pid (the addresses only
        exist inside the fleet's namespaces, so fleets cannot collide anyway).
        """
        check_prerequisites()
        if not 1 <= hosts <= MAX_HOSTS:
            raise FleetError(f"hosts must be 1..{MAX_HOSTS}, not {hosts}")
        network = ipaddress.IPv4Network(subnet or f"10.213.{os.getpid() % 254 + 1}.0/24")
        if network.num_addresses < FIRST_HOST_OCTET + hosts + 1:
            raise FleetError(f"subnet {network} is too small for {hosts} hosts")
        if directory is None:
            root = Path(tempfile.mkdtemp(prefix="pyprov-fleet-", dir=_scratch_parent()))
        else:
            root = Path(directory).absolute()
            root.mkdir(parents=True, exist_ok=True)
            if any(root.iterdir()):
                raise FleetError(f"fleet directory {root} is not empty")
        width = max(2, len(str(hosts)))
        names = [f"h{i:0{width}d}" for i in range(1, hosts + 1)]
        fleet = cls(root, network, f"{NETNS_PREFIX}{os.getpid()}-{secrets.token_hex(2)}", names)
        try:
            fleet._save_state()
            fleet._make_files()
            fleet._make_network()
            fleet._start(fleet.hosts)
            fleet.ssh_config(root / "ssh_config")
            fleet.write_inventory(root / "inventory.ini")
            fleet._save_state()
        except BaseException as error:
            try:
                fleet.destroy()
            except FleetError as cleanup:
                error.add_note(f"(cleanup after that failure also failed: {cleanup})")
            if isinstance(error, OSError | subprocess.SubprocessError):
                raise FleetError(f"test fleet: {error!r}") from error
            raise
        return fleet

    @classmethod
    def attach(cls, directory: Path | str) -> Fleet:
        """Take over the fleet described by ``DIR/fleet.json`` (e.g. started by the CLI)."""
        root = Path(directory).absolute()
        try:
            state = json.loads((root / STATE_FILE).read_text())
        except (OSError, ValueError) as error:
            raise FleetError(f"{root} holds no readable {STATE_FILE}: {error}") from error
        fleet = cls(root, ipaddress.IPv4Network(state["subnet"]), state["ns_prefix"],
                    [h["name"] for h in state["hosts"]])
        fleet._netns_created = list(state["netns_created"])
        for host, saved in zip(fleet.hosts, state["hosts"], strict=True):
            host.connected = saved["connected"]
            if saved["proc"] is not None:
                host._proc = _ProcRef(saved["proc"][0], saved["proc"][1])
        return fleet

    def destroy(self) -> None:
        """Stop every sshd, kill all left in the fleet's namespaces, delete them, remove DIR.

        Idempotent; raises :class:`FleetError` at the end if anything could not be removed.
        """
        if self._destroyed:
            return
        problems: list[str] = []
        self._stop_listeners(self.hosts, problems)
        self._kill_namespace_members(self._all_namespaces(), problems, wait_reaped=True)
        for host in self.hosts:
            host._release_mount_namespaces()
        for mount_point in _mounts_under(self.directory):
            subprocess.run(["umount", "-l", mount_point], check=False, capture_output=True)
        existing = [ns for ns in self._netns_created if (NETNS_DIR / ns).exists()]
        if existing:
            done = subprocess.run(["ip", "-force", "-batch", "-"], check=False,
                                  capture_output=True, text=True,
                                  input="".join(f"netns delete {ns}\n" for ns in existing))
            if done.returncode:
                problems.append(f"ip netns delete: {done.stderr.strip()}")
        shutil.rmtree(self.directory, ignore_errors=True)
        self._destroyed = True
        problems.extend(self.leftovers())
        if problems:
            raise FleetError("fleet teardown left things behind:\n  " + "\n  ".join(problems))

    def leftovers(self) -> list[str]:
        """What of this fleet still exists: namespaces, processes, mounts, files (for checks)."""
        found = [f"netns {ns}" for ns in self._netns_names() if (NETNS_DIR / ns).exists()]
        found.extend(f"sshd pid {host._proc.pid} of {host.name}"
                     for host in self.hosts if host._proc is not None and host._proc.alive())
        found.extend(f"mount {m}" for m in _mounts_under(self.directory))
        if self.directory.exists() and self._destroyed:
            found.append(f"directory {self.directory}")
        return found

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.destroy()

    # ------------------------------------------------------------------ queries

    def host(self, name: str) -> Host:
        """The host called ``name`` (``h01``, ``h02``, ...)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise FleetError(f"no host {name!r} in the fleet ({', '.join(self._by_name)})") \
                from None

    @property
    def names(self) -> list[str]:
        return [host.name for host in self.hosts]

    @property
    def client_public_key(self) -> str:
        return self.client_key.with_suffix(".pub").read_text().strip()

    def describe(self) -> dict[str, Any]:
        """A JSON-able description: addresses, netns names, files, pids, per-host dirs."""
        return {
            "directory": str(self.directory),
            "subnet": str(self.network),
            "lan_netns": self.lan_netns,
            "controller": {"netns": self.controller_netns, "address": self.controller_address,
                           "exec_prefix": self.controller_argv([])},
            "client_key": str(self.client_key),
            "known_hosts": str(self.known_hosts),
            "authorized_keys": str(self.authorized_keys),
            "ssh_config": str(self.directory / "ssh_config"),
            "inventory": str(self.directory / "inventory.ini"),
            "hosts": [host.describe() for host in self.hosts],
        }

    # ------------------------------------------------------------------ controller side

    def controller_argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` prefixed so that it runs in the controller netns (this mount ns)."""
        return ["nsenter", f"--net={NETNS_DIR / self.controller_netns}", "--", *argv]

    def run_in_controller(self, argv: Sequence[str],
                          **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """``subprocess.run(argv, **kwargs)`` inside the controller netns (``check`` False)."""
        kwargs.setdefault("check", False)
        return subprocess.run(self.controller_argv(argv), **kwargs)  # noqa: PLW1510

    def popen_in_controller(self, argv: Sequence[str],
                            **kwargs: Any) -> subprocess.Popen[Any]:
        """``subprocess.Popen(argv, **kwargs)`` inside the controller netns."""
        return subprocess.Popen(self.controller_argv(argv), **kwargs)

    def in_controller(self, function: Callable[[], T]) -> T:
        """Call ``function`` on a thread that has entered the controller netns.

        Sockets it creates stay in that netns after the thread ends: this is how this
        process itself (e.g. paramiko with ``sock=``) reaches the hosts.
        """
        return _in_netns(NETNS_DIR / self.controller_netns, function)

    def connect(self, name: str, timeout: float = 5.0) -> socket.socket:
        """A TCP connection from the controller netns to ``name``'s sshd (TCP_NODELAY set)."""
        host = self.host(name)

        def dial() -> socket.socket:
            sock = socket.create_connection((host.address, host.port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock

        return self.in_controller(dial)

    # ------------------------------------------------------------------ OpenSSH client

    def ssh_options(self) -> dict[str, str]:
        """Client options for strict, non-interactive access with the fleet's key."""
        return {
            "User": "root",
            "IdentityFile": str(self.client_key),
            "IdentitiesOnly": "yes",
            "UserKnownHostsFile": str(self.known_hosts),
            "GlobalKnownHostsFile": "/dev/null",
            "StrictHostKeyChecking": "yes",
            "UpdateHostKeys": "no",
            "BatchMode": "yes",
            "ConnectTimeout": "5",
            "LogLevel": "ERROR",
        }

    def ssh_argv(self, name: str, command: str | Sequence[str] | None = None, *,
                 options: Mapping[str, str] | None = None) -> list[str]:
        """The ``ssh`` command line for ``name``; ``options`` override the defaults.

        It ignores ``~/.ssh/config`` (``-F /dev/null``); a list ``command`` is shell-quoted.
        Run it in the controller netns (:meth:`run_in_controller`).
        """
        host = self.host(name)
        merged = {**self.ssh_options(), **(options or {})}
        argv = ["ssh", "-F", "/dev/null", "-p", str(host.port)]
        for key, value in merged.items():
            argv += ["-o", f"{key}={value}"]
        argv.append(host.address)
        if command is not None:
            argv.append(command if isinstance(command, str) else shlex.join(command))
        return argv

    def ssh(self, name: str, command: str | Sequence[str], *, timeout: float = 30.0,
            input: str | None = None, check: bool = False,
            options: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on host ``name`` with the real OpenSSH client, strict host keys.

        Returns the completed process (text stdout/stderr); exit 255 means SSH failed.
        """
        return self.run_in_controller(self.ssh_argv(name, command, options=options),
                                      input=input, capture_output=True, text=True,
                                      timeout=timeout, check=check)

    def ssh_config(self, path: Path | str) -> Path:
        """Write an OpenSSH client config: ``ssh -F PATH h01`` (or the address) works."""
        lines = ["# OpenSSH client config for the pyprov test fleet (generated)"]
        for host in self.hosts:
            lines += [f"Host {host.name} {host.address}", f"    HostName {host.address}",
                      f"    Port {host.port}"]
        lines.append("Host *")
        lines += [f"    {key} {value}" for key, value in self.ssh_options().items()]
        return _write(Path(path), "\n".join(lines) + "\n")

    def inventory_ini(self, groups: Mapping[str, Iterable[str]] | None = None, *,
                      all_group: str = "fleet",
                      python_interpreter: str | None = "/usr/bin/python3") -> str:
        """An Ansible INI inventory of the fleet.

        Every host is in ``all_group`` with ``ansible_host``, ``ansible_port``,
        ``ansible_user=root`` and ``ansible_ssh_private_key_file``; ``groups`` maps more
        group names to host names. ``[all:vars]`` makes ssh strict and use known_hosts.
        """
        lines = ["# Ansible inventory for the pyprov test fleet (generated)", f"[{all_group}]"]
        lines += [f"{h.name} ansible_host={h.address} ansible_port={h.port} ansible_user=root "
                  f"ansible_ssh_private_key_file={self.client_key}" for h in self.hosts]
        for group, members in (groups or {}).items():
            if group == all_group:
                raise FleetError(f"group {group!r} is the group of all hosts")
            lines += ["", f"[{group}]", *(self.host(member).name for member in members)]
        common = shlex.join(["-F", "/dev/null",
                             "-o", f"UserKnownHostsFile={self.known_hosts}",
                             "-o", "GlobalKnownHostsFile=/dev/null",
                             "-o", "StrictHostKeyChecking=yes",
                             "-o", "IdentitiesOnly=yes"])
        lines += ["", "[all:vars]", f"ansible_ssh_common_args={shlex.quote(common)}"]
        if python_interpreter:
            lines.append(f"ansible_python_interpreter={python_interpreter}")
        return "\n".join(lines) + "\n"

    def write_inventory(self, path: Path | str,
                        groups: Mapping[str, Iterable[str]] | None = None,
                        **kwargs: Any) -> Path:
        """Write :meth:`inventory_ini` to ``path``; returns it."""
        return _write(Path(path), self.inventory_ini(groups, **kwargs))

    # ------------------------------------------------------------------ host operations

    def stop_sshd(self, name: str, *, kill_sessions: bool = True) -> None:
        """Stop ``name``'s sshd (SIGTERM, then SIGKILL): new connections are refused at once.

        With ``kill_sessions`` (default) every process of the host dies too (its open SSH
        sessions and whatever they started), as when a machine goes down; its dirs remain.
        """
        host = self.host(name)
        problems: list[str] = []
        self._stop_listeners([host], problems)
        if kill_sessions:
            self._kill_namespace_members(self._host_namespaces(host), problems)
            host._release_mount_namespaces()
        self._save_state()
        if problems:
            raise FleetError("; ".join(problems))

    def start_sshd(self, name: str) -> None:
        """Start ``name``'s sshd again (no-op if running); returns once it answers SSH."""
        host = self.host(name)
        if host.sshd_pid is None:
            self._start([host])

    def restart_sshd(self, name: str) -> None:
        """Restart the listening sshd only; open sessions survive."""
        self.stop_sshd(name, kill_sessions=False)
        self.start_sshd(name)

    def regenerate_host_key(self, name: str) -> None:
        """Give ``name`` new host keys and restart its sshd; known_hosts is NOT updated.

        Strict clients then refuse the host until :meth:`trust_host_keys`.
        """
        host = self.host(name)
        for key_type in HOST_KEY_TYPES:
            for path in (host.dirs.host_key(key_type), host.dirs.host_key(key_type)
                         .with_suffix(".pub")):
                path.unlink(missing_ok=True)
        _run_all([_keygen_argv(host.dirs.host_key(t), t, f"root@{host.name}")
                  for t in HOST_KEY_TYPES], "ssh-keygen (host keys)")
        self.restart_sshd(name)

    def trust_host_keys(self) -> None:
        """Rewrite known_hosts with every host's current keys."""
        _write(self.known_hosts,
               "".join(line + "\n" for host in self.hosts for line in host.known_hosts_lines()))

    def disconnect(self, name: str) -> None:
        """Take ``name``'s LAN port down: its packets are dropped, as if unplugged.

        Connecting then times out (``ConnectTimeout``), or fails with "No route to host"
        once ARP gives up (~3 s); sshd keeps running, so :meth:`start_sshd` still works.
        """
        self._set_link(self.host(name), up=False)

    def reconnect(self, name: str) -> None:
        """Undo :meth:`disconnect`."""
        self._set_link(self.host(name), up=True)

    def restore(self) -> None:
        """Undo what tests do to hosts: reconnect, start sshds, trust the current keys."""
        for host in self.hosts:
            if not host.connected:
                self._set_link(host, up=True)
        stopped = [host for host in self.hosts if host.sshd_pid is None]
        if stopped:
            self._start(stopped)
        self.trust_host_keys()

    def wipe(self, name: str | None = None) -> None:
        """Empty the host's (or every host's) /etc/docker, /etc/cron.d, /etc/systemd/system,
        /opt/pyprov, /var/lib/pyprov, /root."""
        for host in self.hosts if name is None else [self.host(name)]:
            for directory in (*host.dirs.state_dirs(), *host.dirs.service_dirs(),
                              host.dirs.root_home):
                for entry in directory.iterdir():
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()

    # ------------------------------------------------------------------ internals: build

    def _netns_names(self) -> list[str]:
        return [self.lan_netns, self.controller_netns, *(h.netns for h in self.hosts)]

    def _save_state(self) -> None:
        state = {**self.describe(),
                 "ns_prefix": self.lan_netns.removesuffix("-lan"),
                 "netns_created": self._netns_created,
                 "hosts": [host._state() for host in self.hosts]}
        _write(self.directory / STATE_FILE, json.dumps(state, indent=2) + "\n")

    def _make_files(self) -> None:
        keygens = [_keygen_argv(self.client_key, "ed25519", "pyprov-fleet-controller")]
        for host in self.hosts:
            dirs = host.dirs
            for directory in (*dirs.state_dirs(), *dirs.service_dirs(), dirs.run / "sshd", dirs.ssh,
                              dirs.root / "log", dirs.overlay, dirs.root_home):
                directory.mkdir(parents=True)
            dirs.root_home.chmod(0o700)
            (dirs.run / "sshd").chmod(0o755)  # sshd insists: root-owned, not group-writable
            dirs.hostname_file.write_text(f"{host.name}\n")
            for source, _target in dirs.binds():
                if source.parent == dirs.root / "log":
                    source.touch()
            dirs.sshd_config.write_text(self._sshd_config(host))
            keygens += [_keygen_argv(dirs.host_key(t), t, f"root@{host.name}")
                        for t in HOST_KEY_TYPES]
        _run_all(keygens, "ssh-keygen")
        _write(self.authorized_keys, self.client_public_key + "\n")
        self.trust_host_keys()

    def _sshd_config(self, host: Host) -> str:
        return "\n".join([
            "# sshd_config of a pyprov test fleet host (generated)",
            f"ListenAddress {host.address}:{host.port}",
            f"Port {host.port}",
            *(f"HostKey {host.dirs.host_key(t)}" for t in HOST_KEY_TYPES),
            f"PidFile {host.dirs.pid_file}",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "StrictModes no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "MaxStartups 200",  # controllers fan out; sshd's 10:30:100 drops connections early
            "MaxSessions 100",
            "LogLevel VERBOSE",  # logs "Starting session: command ..." per exec
            f"Subsystem sftp {SFTP_SERVER}",  # Ansible copies files over sftp
            "",
        ])

    def _make_network(self) -> None:
        # `netns add` moves `ip` itself into the new netns: this batch does nothing else.
        members = [self.controller_netns, *(h.netns for h in self.hosts)]
        for ns in (self.lan_netns, *members):
            self._netns_created.append(ns)  # recorded first: a half-made one is deleted too
        self._save_state()
        _run(["ip", "-batch", "-"], "ip netns add",
             input="".join(f"netns add {ns}\n" for ns in self._netns_created))
        lan = ["link set lo up", "link add br0 type bridge", "link set br0 up"]
        ends = [("v-ctl", self.controller_netns, self.controller_address)]
        ends += [(h.lan_port, h.netns, h.address) for h in self.hosts]
        for port, ns, _address in ends:
            lan += [f"link add {port} type veth peer name eth0 netns {ns}",
                    f"link set {port} master br0", f"link set {port} up"]
        _run(["ip", "-n", self.lan_netns, "-batch", "-"], "LAN bridge setup",
             input="".join(f"{line}\n" for line in lan))
        prefix = self.network.prefixlen
        _run_all([["ip", "-n", ns, "-batch", "-"] for _port, ns, _address in ends],
                 "netns address setup",
                 inputs=[f"link set lo up\naddr add {address}/{prefix} dev eth0\n"
                         "link set eth0 up\n" for _port, _ns, address in ends])

    def _set_link(self, host: Host, *, up: bool) -> None:
        _run(["ip", "-n", self.lan_netns, "link", "set", host.lan_port, "up" if up else "down"],
             "LAN port " + ("up" if up else "down"))
        host.connected = up
        self._save_state()

    # ------------------------------------------------------------------ internals: sshd

    def _wrapper_script(self, host: Host) -> str:
        """Runs in the host's new mount + UTS namespace, then execs sshd ("$@")."""
        binds = host.dirs.binds()
        missing = [target for _source, target in binds if not Path(target).exists()]
        overlays: list[Path] = []
        for target in missing:
            parent = Path(target).parent
            while not parent.exists():
                parent = parent.parent
            if parent == Path("/"):
                raise FleetError(f"cannot make {target} inside a host: / would need an overlay")
            if parent not in overlays:
                overlays.append(parent)
        lines = [
            "set -e",
            # Our copies of the machine's /run/netns mounts would pin every netns (and let
            # sessions enter them); the namespace is private, so this unmounts ours only.
            "umount -l /run/netns 2>/dev/null || :",
        ]
        for i, parent in enumerate(overlays):
            upper, work = host.dirs.overlay / f"{i}-upper", host.dirs.overlay / f"{i}-work"
            upper.mkdir(parents=True, exist_ok=True)
            work.mkdir(parents=True, exist_ok=True)
            options = f"lowerdir={parent},upperdir={upper},workdir={work}"
            lines.append(f"mount -t overlay overlay -o {shlex.quote(options)} "
                         f"{shlex.quote(str(parent))}")
        lines += [f"mkdir -p {shlex.quote(target)}" for target in missing]
        lines += [f"mount --bind {shlex.quote(str(source))} {shlex.quote(target)}"
                  for source, target in binds]
        lines += [f"hostname {shlex.quote(host.name)}", 'exec "$@"']
        return "\n".join(lines)

    def _sshd_argv(self, host: Host) -> list[str]:
        return [SSHD, "-D", "-e", "-f", str(host.dirs.sshd_config),
                "-o", f"PidFile={host.dirs.pid_file}"]

    def _launch(self, host: Host) -> None:
        argv = ["ip", "netns", "exec", host.netns,
                "unshare", "--mount", "--uts", "--propagation", "private",
                "sh", "-c", self._wrapper_script(host), "sh", *self._sshd_argv(host)]
        host.dirs.pid_file.unlink(missing_ok=True)
        with host.dirs.sshd_log.open("ab") as log:
            log.write(f"===== {time.strftime('%H:%M:%S')} start: {shlex.join(argv)}\n".encode())
            log.flush()
            # ip execs unshare, which execs sh, which execs sshd: this pid is sshd's.
            host._popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        host._proc = None

    def _start(self, hosts: Sequence[Host]) -> None:
        """Launch the hosts' sshds in parallel; return when all answer with an SSH banner."""
        for host in hosts:
            self._launch(host)
        waiting = {host.name: host for host in hosts}
        failures: list[str] = []
        deadline = time.monotonic() + START_TIMEOUT

        def poll() -> None:
            while waiting and time.monotonic() < deadline:
                for name, host in list(waiting.items()):
                    assert host._popen is not None
                    if host._popen.poll() is not None:
                        failures.append(f"{name}: sshd exited with code "
                                        f"{host._popen.returncode}")
                        del waiting[name]
                    elif (_ssh_banner(host.address, host.port) if host.connected
                          else _log_says_listening(host)):
                        del waiting[name]
                if waiting:
                    time.sleep(0.01)

        self.in_controller(poll)
        failures += [f"{name}: no SSH banner on {h.address}:{h.port} within {START_TIMEOUT:.0f}s"
                     for name, h in waiting.items()]
        for host in hosts:
            if any(f.startswith(f"{host.name}:") for f in failures):
                continue
            assert host._popen is not None
            pid = host._popen.pid
            comm = _read(Path(f"/proc/{pid}/comm")).strip()
            cmdline = _read(Path(f"/proc/{pid}/cmdline"))
            if comm != "sshd" or str(host.dirs.sshd_config) not in cmdline:
                failures.append(f"{host.name}: pid {pid} is {comm!r}, not our sshd")
                continue
            host._proc = _ProcRef.of(pid)
            with contextlib.suppress(OSError):
                fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
                info = os.fstat(fd)
                if (info.st_dev, info.st_ino) in host._mount_ns_fds:
                    os.close(fd)
                else:
                    host._mount_ns_fds[info.st_dev, info.st_ino] = fd
        for host in hosts:  # a failed sshd that still runs (no banner) is stopped
            if host._proc is None and host._popen is not None and host._popen.poll() is None:
                host._popen.kill()
                host._popen.wait()
        self._save_state()
        if failures:
            details = []
            for host in hosts:
                if any(f.startswith(f"{host.name}:") for f in failures):
                    details.append(f"--- {host.name} sshd log ({host.dirs.sshd_log}, removed "
                                   "at teardown) ---\n"
                                   f"{_tail(host.dirs.sshd_log)}")
            raise FleetError("test fleet: sshd did not come up:\n  " + "\n  ".join(failures)
                             + "\n" + "\n".join(details[:3]))

    def _stop_listeners(self, hosts: Iterable[Host], problems: list[str]) -> None:
        """SIGTERM the hosts' sshd listeners together, SIGKILL after STOP_TIMEOUT."""
        running = [host for host in hosts if host.sshd_pid is not None]
        for host in running:
            assert host._proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(host._proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(h.sshd_pid is not None for h in running) and time.monotonic() < deadline:
            time.sleep(0.01)
        for host in running:
            if host.sshd_pid is not None and host._proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(host._proc.pid, signal.SIGKILL)
        poll(lambda: all(h.sshd_pid is None for h in running), STOP_TIMEOUT)
        for host in running:
            if host.sshd_pid is not None:
                problems.append(f"{host.name}: sshd pid {host.sshd_pid} survived SIGKILL")
            if host._popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    host._popen.wait(0.1)  # reap
        for host in hosts:
            host.dirs.pid_file.unlink(missing_ok=True)

    def _host_namespaces(self, host: Host) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
        nets = {ns for ns in [_netns_id(host.netns)] if ns is not None}
        return nets, set(host._mount_ns_fds)

    def _all_namespaces(self) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
        nets = {ns for ns in map(_netns_id, self._netns_created) if ns is not None}
        mounts = {ns for host in self.hosts for ns in host._mount_ns_fds}
        return nets, mounts

    def _kill_namespace_members(self, namespaces: tuple[set[tuple[int, int]],
                                                        set[tuple[int, int]]],
                                problems: list[str], *, wait_reaped: bool = False) -> None:
        """SIGKILL every process in these network or mount namespaces; wait for them."""
        nets, mounts = namespaces
        if not nets and not mounts:
            return

        def members() -> list[int]:
            return _pids_in_namespaces(nets, mounts)

        killed: set[int] = set()
        deadline = time.monotonic() + 10
        while (pids := members()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            killed.update(pids)
            time.sleep(0.02)
        if pids := members():
            problems.append(f"processes {pids} in the fleet's namespaces survived SIGKILL")
        # Orphans (ssh sessions of a dead sshd, daemonized ssh ControlMasters) stay zombies
        # until pid 1 reaps them, which takes up to ~2 s on this machine kind: wait a bit, so
        # that `pgrep sshd` after teardown is clean; harmless if it takes longer.
        if wait_reaped:
            poll(lambda: not any(_orphan_zombie(pid) for pid in killed), 3.0)


# ---------------------------------------------------------------------- helpers


def _keygen_argv(path: Path, key_type: str, comment: str) -> list[str]:
    argv = ["ssh-keygen", "-q", "-N", "", "-t", key_type, "-C", comment, "-f", str(path)]
    return [*argv[:6], "-b", "256", *argv[6:]] if key_type == "ecdsa" else argv


def _run(argv: Sequence[str], what: str, *, input: str | None = None
         ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, input=input, capture_output=True, text=True, check=False,
                          timeout=60)
    if done.returncode:
        raise FleetError(f"{what} failed (exit {done.returncode}): {shlex.join(argv)}\n"
                         f"{done.stderr.strip()}")
    return done


def _run_all(argvs: Sequence[Sequence[str]], what: str,
             inputs: Sequence[str] | None = None) -> None:
    """Run commands in parallel; raise naming the first that failed."""
    started = [subprocess.Popen(argv, stdin=subprocess.PIPE if inputs else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for argv in argvs]
    failed = []
    for i, (argv, process) in enumerate(zip(argvs, started, strict=True)):
        output, _ = process.communicate(inputs[i] if inputs else None, timeout=60)
        if process.returncode:
            failed.append(f"{shlex.join(argv)} (exit {process.returncode}): {output.strip()}")
    if failed:
        raise FleetError(f"{what} failed: " + "\n".join(failed[:5]))


def _write(path: Path, text: str) -> Path:
    """Write atomically (readers such as a concurrent ssh never see half a file)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    temporary.replace(path)
    return path


def _read(path: Path) -> str:
    try:
        return path.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _tail(path: Path, lines: int = 40) -> str:
    text = _read(path)
    return "\n".join(text.splitlines()[-lines:]) if text else "(empty log)"


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process, or None if there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], fields[19]


def reap_stale_fleets() -> list[str]:
    """Tear down fleets whose creating process died without ``destroy`` (a killed pytest).

    A fleet's netns names carry its creator's pid (the keeper's, for the CLI); for each
    such fleet whose creator is gone, kill what runs in its namespaces, delete them, and
    remove its directory if it is a default one (``/dev/shm`` or ``/tmp``). Returns what
    was removed. Fleets of live processes are never touched.
    """
    owners: dict[str, list[str]] = {}
    for entry in (NETNS_DIR.iterdir() if NETNS_DIR.is_dir() else []):
        if entry.name.startswith(NETNS_PREFIX):
            prefix = entry.name.rsplit("-", 1)[0]
            owners.setdefault(prefix, []).append(entry.name)
    reaped: list[str] = []
    killed: set[int] = set()
    for prefix, names in owners.items():
        pid = prefix.removeprefix(NETNS_PREFIX).split("-")[0]
        if not pid.isdigit() or _ProcRef.of(int(pid)) is not None:
            continue
        nets = {ns for ns in map(_netns_id, names) if ns is not None}
        for _ in range(50):
            pids = _pids_in_namespaces(nets, set())
            if not pids:
                break
            for member in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member, signal.SIGKILL)
            killed.update(pids)
            time.sleep(0.02)
        subprocess.run(["ip", "-force", "-batch", "-"], check=False, capture_output=True,
                       text=True, input="".join(f"netns delete {ns}\n" for ns in names))
        reaped.append(f"fleet {prefix} (netns {', '.join(sorted(names))})")
        for state_file in [*Path("/dev/shm").glob(f"*/{STATE_FILE}"),
                           *Path("/tmp").glob(f"*/{STATE_FILE}")]:
            with contextlib.suppress(OSError, ValueError, KeyError):
                if json.loads(state_file.read_text())["ns_prefix"] == prefix:
                    shutil.rmtree(state_file.parent, ignore_errors=True)
                    reaped.append(f"directory {state_file.parent}")
    poll(lambda: not any(_orphan_zombie(pid) for pid in killed), 3.0)
    return reaped


def _scratch_parent() -> str:
    """/dev/shm when it is a writable tmpfs (fast to fill and remove), else /tmp."""
    for line in _read(Path("/proc/self/mountinfo")).splitlines():
        fields = line.split()
        if fields[4] == "/dev/shm" and fields[fields.index("-") + 1] == "tmpfs" \
                and os.access("/dev/shm", os.W_OK):
            return "/dev/shm"
    return "/tmp"


def _orphan_zombie(pid: int) -> bool:
    """A dead process that pid 1 has yet to reap."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] == "Z" and fields[1] == "1"


def _ns_id(pid: int, kind: str) -> tuple[int, int] | None:
    try:
        info = Path(f"/proc/{pid}/ns/{kind}").stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _netns_id(name: str) -> tuple[int, int] | None:
    try:
        info = (NETNS_DIR / name).stat()
    except OSError:
        return None
    # An unmounted /run/netns/NAME (a half-made netns) is a plain file, not an nsfs inode.
    return (info.st_dev, info.st_ino) if info.st_dev != NETNS_DIR.stat().st_dev else None


def _pids_in_namespaces(nets: set[tuple[int, int]], mounts: set[tuple[int, int]]) -> list[int]:
    """Live processes in any of these namespaces (never this process)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        if _ns_id(pid, "net") in nets or _ns_id(pid, "mnt") in mounts:
            stat = _proc_stat(pid)
            if stat is not None and stat[0] != "Z":
                found.append(pid)
    return found


def _mounts_under(root: Path) -> list[str]:
    found = []
    for line in _read(Path("/proc/self/mountinfo")).splitlines():
        mount_point = line.split()[4].replace("\\040", " ")
        if mount_point == str(root) or mount_point.startswith(f"{root}/"):
            found.append(mount_point)
    return sorted(found, key=len, reverse=True)



def _log_says_listening(host: Host) -> bool:
    """The latest start of ``host``'s sshd logged that it listens (for unplugged hosts)."""
    latest = _read(host.dirs.sshd_log).rsplit("===== ", 1)[-1]
    return f"Server listening on {host.address} port {host.port}." in latest


def _ssh_banner(address: str, port: int) -> bool:
    """True once something at address:port greets with ``SSH-2.0-``."""
    try:
        with socket.create_connection((address, port), timeout=0.5) as sock:
            return sock.recv(8).startswith(b"SSH-2.0")
    except OSError:
        return False


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _setns(path: Path, nstype: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc().setns(fd, nstype) != 0:
            code = ctypes.get_errno() or errno.EINVAL
            raise OSError(code, f"setns({path}): {os.strerror(code)}")
    finally:
        os.close(fd)


def _in_netns(path: Path, function: Callable[[], T]) -> T:
    """Run ``function`` on a fresh thread that entered the netns at ``path``.

    A network namespace switch (setns) applies to the calling thread only, so the rest
    of this process stays where it is.
    """
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            _setns(path, _CLONE_NEWNET)
            results.append(function())
        except BaseException as error:  # handed to the caller
            errors.append(error)

    thread = threading.Thread(target=target, name=f"netns:{path.name}", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]
