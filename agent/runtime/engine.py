"""The container runtime's operations: create, start, stop, remove, status.

Used by the Container resource and the host CLI alike, so ``pyprov run`` and a manifest
make the same container. Each operation leaves the host in a state the next one repairs:
a creation is only visible once its record is written (a directory without one is
removed by the next creation), a start that fails half-way takes back what it added
(network, cgroup, reserved ports), stop and remove are idempotent.

Ownership: the agent creates, starts and removes; a container's *process* belongs to its
monitor (forked by the zygote, outside the agent), so agent restarts never touch it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import PyprovError
from agent.oci.config import ImageConfig
from agent.runtime import rootfs
from agent.runtime.cgroups import CgroupDriver, CgroupError, Limits, detect
from agent.runtime.passwd import resolve_user
from agent.runtime.procs import alive
from agent.runtime.records import (
    ContainerError,
    ContainerRecord,
    ContainerStore,
    NameInUse,
    NoSuchContainer,
)
from agent.runtime.sandbox import BindMount
from agent.runtime.volumes import Volumes
from agent.runtime.zygote import ZygoteError, launch_zygote, request_start
from agent.state import StateDir
from agent.store.layout import ImageStore
from agent.textfmt import now_rfc3339

if TYPE_CHECKING:
    from agent.runtime.spec import ContainerSpec

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
ETC_FILES = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")


@dataclass(frozen=True)
class Status:
    """docker's states: created, running, restarting, exited, dead (its monitor is gone
    while it was running: a host reboot, a killed monitor)."""

    status: str
    pid: int | None = None
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    restart_count: int = 0
    error: str | None = None
    monitor_pid: int | None = None

    @property
    def running(self) -> bool:
        return self.status in ("running", "restarting")


class Runtime:
    def __init__(self, state: StateDir, *, overlay: bool | None = None,
                 network: Any = None, cgroups: CgroupDriver | None = None) -> None:
        self.state = state
        self.store = ContainerStore(state.containers)
        self.volumes = Volumes(state.volumes)
        self.images = ImageStore(state.images)
        self.overlay = overlay
        self._network = network
        self._cgroups = cgroups

    # -- parts, made when first needed --------------------------------------------------

    @property
    def network(self) -> Any:
        if self._network is None:
            from agent.runtime.network import Network
            self._network = Network(self.state.network)
        return self._network

    @property
    def cgroups(self) -> CgroupDriver:
        if self._cgroups is None:
            self._cgroups = detect()
        return self._cgroups

    # -- images ---------------------------------------------------------------------------

    def image_config(self, manifest_digest: str) -> tuple[ImageConfig, list[Path]]:
        """The image's config and its unpacked layers, bottom first (all must be there)."""
        config = self.images.config_at(manifest_digest)
        missing = [d for d in config.diff_ids if not self.images.has_layer(d)]
        if missing:
            raise ContainerError(f"image {manifest_digest[:19]}: layer {missing[0][:19]} is "
                                 "not unpacked in the store (pull the image again)")
        return config, [self.images.layer_dir(d) for d in config.diff_ids]

    # -- create ---------------------------------------------------------------------------

    def create(self, spec: ContainerSpec, *, managed: bool, auto_remove: bool = False,
               reuse_volumes: dict[str, str] | None = None) -> ContainerRecord:
        with self.store.locked():
            for leftover in self.store.incomplete():
                self._discard(self.store.directory(leftover))
            for orphan in self.network.attached_ids() - set(self.store.ids()):
                self.network.detach(orphan)  # its container is gone: a crash left it
            holder = self.store.by_name(spec.name)
            if holder is not None:
                raise NameInUse(spec.name, holder.id)
            if spec.network == "bridge" and spec.ports:  # taken: refused, nothing made
                self.network.reserve(_mappings(spec.ports)).close()
            inherited = self._inherited_mounts(spec.volumes_from)
            config, layers = self.image_config(spec.image_digest)
            del config
            container_id = self.store.new_id()
            directory = self.store.directory(container_id)
            directory.mkdir(mode=0o700, parents=True)
            created: list[str] = []
            try:
                root = rootfs.prepare(directory, layers, overlay=self.overlay)
                user = resolve_user(root.path, spec.user)
                resolved = self.volumes.resolve(list(spec.volumes), list(spec.anonymous_volumes),
                                                root.path, inherited, reuse=reuse_volumes or {})
                created = resolved.created
                env = list(spec.env)
                if not any(entry.startswith("HOME=") for entry in env):
                    env.append(f"HOME={user.home or '/'}")
                record = ContainerRecord(
                    id=container_id, name=spec.name, created=now_rfc3339(),
                    spec=asdict(spec), spec_hash=_hash(spec), managed=managed,
                    hostname=spec.hostname or container_id[:12], env=env,
                    uid=user.uid, gid=user.gid, groups=list(user.additional_gids),
                    layers=[str(layer) for layer in layers], mounts=resolved.as_records(),
                    volumes=resolved.created, auto_remove=auto_remove)
                self.store.save(record)
            except BaseException:
                self._discard(directory)
                for name in created:
                    self.volumes.remove(name)
                raise
            return record

    def _inherited_mounts(self, volumes_from: tuple[str, ...]) -> list[BindMount]:
        inherited = []
        for entry in volumes_from:
            name, _, mode = entry.partition(":")
            source = self.store.find(name)
            for mount in source.mounts:
                if mount["target"] in ETC_FILES:
                    continue
                read_only = mode == "ro" or (mode == "" and bool(mount.get("read_only")))
                inherited.append(BindMount(mount["source"], mount["target"], read_only))
        return inherited

    def _discard(self, directory: Path) -> None:
        rootfs.destroy(directory)
        shutil.rmtree(directory, ignore_errors=True)

    # -- status ---------------------------------------------------------------------------

    def _state(self, record: ContainerRecord) -> dict[str, Any]:
        try:
            data = json.loads((self.store.directory(record.id) / "state.json").read_bytes())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def status(self, record: ContainerRecord) -> Status:
        state = self._state(record)
        if not state:
            return Status("created")
        monitor = alive(state.get("monitor_pid"), state.get("monitor_start"))
        recorded = str(state.get("status", "created"))
        if recorded in ("running", "restarting") and not monitor:
            recorded = "dead"
        elif recorded == "stopped":
            recorded = "exited"
        return Status(recorded, state.get("pid") if monitor else None, state.get("exit_code"),
                      state.get("started_at"), state.get("finished_at"),
                      int(state.get("restart_count") or 0), state.get("error"),
                      state.get("monitor_pid") if monitor else None)

    # -- start ----------------------------------------------------------------------------

    def start(self, record: ContainerRecord, *, console: int | None = None,
              stdin: int | None = None) -> Status:
        """Under the store's lock: the exit hook of its previous run must not release
        the network this start is setting up. ``console``: a socket the container's pty
        master is sent to (``run -t``); ``stdin``: its first run's stdin (``run -i``)."""
        with self.store.locked():
            return self._start(record, console, stdin)

    def _start(self, record: ContainerRecord, console: int | None = None,
               stdin: int | None = None) -> Status:
        status = self.status(record)
        if status.monitor_pid:
            return status  # running, or restarting under its monitor's policy
        spec = record.spec
        directory = self.store.directory(record.id)
        mappings = _mappings(spec["ports"])
        bridge = spec.get("network", "bridge") == "bridge"
        reservation = self.network.reserve(mappings) if bridge and mappings else None
        try:
            root = rootfs.prepare(directory, [Path(p) for p in record.layers],
                                  overlay=self.overlay)
            sandbox: dict[str, Any] = {
                "rootfs": str(root.path), "hostname": record.hostname, "uid": record.uid,
                "gid": record.gid, "groups": record.groups,
                "network": spec.get("network", "bridge"), "mounts": list(record.mounts)}
            proxy = None
            if bridge:
                attachment = self.network.attach(record.id)
                ports = reservation.ports if reservation else ()
                if ports:
                    attachment = self.network.publish(record.id, attachment, ports)
                record.network = attachment.to_json()
                record.ports = [port.to_json() for port in ports]
                sandbox["netns"] = str(attachment.netns_path)
                proxy = {"target": str(attachment.ip),
                         "ports": [port.container_port for port in ports]} if ports else None
            self._write_etc_files(record, directory)
            sandbox["mounts"] += self._etc_mounts(record, directory)
            sandbox["cgroup_procs"] = self._cgroup(record)
            record.stopped_by_user = False
            self.store.save(record)
            config = self._monitor_config(record, directory, sandbox, proxy)
            fds = [sock.fileno() for sock in reservation.sockets] if reservation else []
            for key, fd in (("console", console), ("stdin", stdin)):
                if fd is not None:  # after the ports, in this order (see zygote.py)
                    config[key] = True
                    fds.append(fd)
            monitor = self._request_start(config, fds)
        except BaseException:
            with contextlib.suppress(PyprovError, OSError):
                self._release_host_parts(record)
            raise
        finally:
            if reservation is not None:
                reservation.close()
        return self._wait_started(record, monitor)

    def _monitor_config(self, record: ContainerRecord, directory: Path,
                        sandbox: dict[str, Any], proxy: dict[str, Any] | None) -> dict[str, Any]:
        spec = record.spec
        signum = getattr(signal, spec["stop_signal"], None)
        if not isinstance(signum, int):
            with contextlib.suppress(ValueError):
                signum = int(spec["stop_signal"])
        config: dict[str, Any] = {
            "argv": list(spec["argv"]), "env": record.env, "cwd": spec["working_dir"],
            "log": str(directory / f"{record.id}-json.log"),
            "state": str(directory / "state.json"), "restart": spec["restart"],
            "stop_signal": int(signum or signal.SIGTERM), "stop_timeout": STOP_TIMEOUT,
            "sandbox": sandbox, "proxy": proxy,
            "on_exit": [sys.executable, "-I", "-m", "agent", "container-exited",
                        "--state-dir", str(self.state.root), record.id],
        }
        return config

    def _request_start(self, config: dict[str, Any], fds: list[int]) -> int:
        from agent.process import build_id
        path = self.state.zygote_socket
        build = build_id() or _source_build()
        for attempt in range(2):
            try:
                return request_start(str(path), config, fds, build=build)
            except ZygoteError as exc:
                if attempt:
                    raise
                if getattr(exc, "stale", False) or not path.exists() or "reach" in str(exc):
                    self.state.ensure()
                    launch_zygote(path, build, self.state.root / "zygote.log")
                    continue
                raise
        raise ZygoteError("unreachable")

    def _wait_started(self, record: ContainerRecord, monitor: int) -> Status:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            state = self._state(record)
            if state.get("monitor_pid") == monitor and state.get("status"):
                return self.status(record)
            time.sleep(0.002)
        raise ContainerError(f"container {record.name}: its monitor did not report a start "
                             f"in {START_TIMEOUT:.0f} s")

    def _cgroup(self, record: ContainerRecord) -> list[str]:
        spec = record.spec
        limits = Limits(spec.get("mem_limit"), spec.get("cpus"), spec.get("pids_limit"))
        name = f"pyprov/{record.id}"
        try:
            self.cgroups.create(name, limits)
        except CgroupError:
            if limits != Limits():
                raise
            return []  # no limits asked: a host without usable cgroups still runs it
        return [str(path) for path in self.cgroups.procs_files(name)]

    def _write_etc_files(self, record: ContainerRecord, directory: Path) -> None:
        from agent.fsutil.atomic import atomic_write
        from agent.runtime.network import files
        ip = record.network["ip"] if record.network else None
        host_mode = record.spec.get("network") == "host"
        hostname = os.uname().nodename if host_mode else record.hostname
        host_resolv = files.host_resolv_conf()
        hosts = _read_or_empty(Path("/etc/hosts")) if host_mode else files.hosts(hostname, ip)
        resolv = _read_or_empty(host_resolv) if host_mode else \
            files.resolv_conf(_read_or_empty(host_resolv))
        for name, text in (("hosts", hosts), ("hostname", files.hostname_file(hostname)),
                           ("resolv.conf", resolv)):
            atomic_write(directory / name, text.encode(), mode=0o644, dir_mode=0o700)

    def _etc_mounts(self, record: ContainerRecord, directory: Path) -> list[dict[str, Any]]:
        taken = {mount["target"] for mount in record.mounts}
        return [asdict(BindMount(str(directory / target.rsplit("/", 1)[1]), target))
                for target in ETC_FILES if target not in taken]

    # -- stop and remove ------------------------------------------------------------------

    def stop(self, record: ContainerRecord, timeout: float | None = None) -> bool:
        """Stop it (the image's stop signal, SIGKILL after ``timeout``); True if it ran."""
        status = self.status(record)
        ran = bool(status.monitor_pid)
        if status.monitor_pid:
            grace = STOP_TIMEOUT if timeout is None else max(0.0, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(status.monitor_pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            killed = False
            while self.status(record).monitor_pid:
                if not killed and time.monotonic() >= deadline and status.pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(status.pid, signal.SIGKILL)
                    killed = True
                if time.monotonic() > deadline + STOP_TIMEOUT:
                    raise ContainerError(f"container {record.name}: its monitor "
                                         f"{status.monitor_pid} does not stop")
                time.sleep(0.005)
        record.stopped_by_user = True
        self._release_host_parts(record)
        return ran

    def _release_host_parts(self, record: ContainerRecord) -> None:
        """What a stopped container must not hold: its network and its cgroup."""
        if record.network is not None or record.ports or self.network.attached(record.id):
            self.network.detach(record.id)
            record.network, record.ports = None, []
        self.store.update(record)
        with contextlib.suppress(CgroupError, OSError):
            self.cgroups.remove(f"pyprov/{record.id}")

    def remove(self, record: ContainerRecord, *, force: bool = False,
               volumes: bool = False) -> None:
        if self.status(record).monitor_pid:
            if not force:
                raise ContainerError(f"cannot remove container {record.name}: it is running "
                                     "(stop it first, or force the removal)")
            self.stop(record, timeout=0)
        with self.store.locked():
            self._release_host_parts(record)
            directory = self.store.directory(record.id)
            with contextlib.suppress(FileNotFoundError):
                (directory / "config.json").unlink()  # gone from listings first
            self._discard(directory)
            if volumes or record.auto_remove:
                for name in record.volumes:
                    self.volumes.remove(name)

    def restore(self) -> list[str]:
        """After a reboot (or a killed monitor): start again every container whose policy
        says it must run, as dockerd does when it starts: ``always``, and
        ``unless-stopped`` unless someone stopped it. The names of those started."""
        started = []
        for record in self.store.all():
            policy = str(record.spec.get("restart", "no"))
            wanted = policy == "always" or (policy == "unless-stopped"
                                            and not record.stopped_by_user)
            if wanted and self.status(record).status == "dead":
                with contextlib.suppress(PyprovError, OSError):
                    self.start(record)
                    started.append(record.name)
        return started

    def exited(self, container_id: str) -> None:
        """Called by the monitor's exit hook: release the network and cgroup of a
        container that is down for good (and remove a ``--rm`` one). Under the store's
        lock, from the record on disk: a removal or a new start may have come first."""
        with self.store.locked():
            try:
                record = self.store.load(container_id)
            except NoSuchContainer:
                return
            if self.status(record).monitor_pid:
                return  # started again meanwhile
            if not record.auto_remove:
                self._release_host_parts(record)
                return
        self.remove(record, volumes=True)


def _mappings(ports: Any) -> list[Any]:
    """The spec's normalized ``-p`` strings, parsed again by the one parser (a pydantic
    model: imported only by containers that publish ports)."""
    if not ports:
        return []
    from agent.model.syntax.ports import PortMapping
    return [PortMapping.model_validate(port) for port in ports]


def _hash(spec: ContainerSpec) -> str:
    from agent.runtime.spec import spec_hash
    return spec_hash(spec)


def _read_or_empty(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


@functools.cache
def _source_build() -> str:
    """Outside a bootstrapped venv: the agent package's newest source mtime, so a zygote
    started from older code is replaced after an edit (development and tests)."""
    root = Path(__file__).resolve().parents[1]
    newest = max((p.stat().st_mtime_ns for p in root.rglob("*.py")), default=0)
    return f"src-{newest}"
