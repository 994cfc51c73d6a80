"""The one merge of an image's config with a Container manifest, and its versioned hash.

docker's rules: a manifest ``entrypoint`` replaces the image's and drops the image's Cmd
(as ``docker run --entrypoint`` does) unless a ``command`` is given too; ``command``
replaces Cmd; environment is the image's then the manifest's, by name (a manifest
``KEY`` without a value removes it: the agent never passes its own environment on);
working dir, user and stop signal fall back to the image's, then to ``/``, root and
SIGTERM; labels merge; image VOLUMEs not covered by a manifest volume become anonymous
volumes. PATH gets docker's default when neither sets it.

``spec_hash`` decides recreation (kubelet's lesson: version the hash, or an upgrade of
pyprov that changes the normalized form restarts every container). It covers everything
that shapes the container, the image's manifest digest included; not ``state``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from agent.errors import PyprovError
from agent.model.syntax.paths import normalize_path

if TYPE_CHECKING:  # the manifest models (pydantic) are the callers' import, not ours
    from agent.model import Container
    from agent.oci.config import ImageConfig

SPEC_VERSION = 1
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_STOP_SIGNAL = "SIGTERM"
KERNEL_DIRS = ("/proc", "/sys", "/dev")


class SpecError(PyprovError):
    pass


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str               # the reference as the manifest names it
    image_digest: str        # the ImageManifest digest the container is made from
    argv: tuple[str, ...]
    env: tuple[str, ...]     # KEY=VALUE, image order first, then new manifest keys
    working_dir: str
    user: str
    hostname: str | None     # None: the runtime uses the container's short id
    stop_signal: str
    ports: tuple[str, ...]   # normalized -p mappings
    volumes: tuple[str, ...]  # normalized -v mounts, then anonymous image volumes
    anonymous_volumes: tuple[str, ...]
    restart: str
    labels: tuple[tuple[str, str], ...]
    mem_limit: int | None
    cpus: float | None
    pids_limit: int | None
    network: str = "bridge"
    volumes_from: tuple[str, ...] = ()
    version: int = field(default=SPEC_VERSION)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


def _argv(doc: Container, config: ImageConfig) -> tuple[str, ...]:
    entrypoint = doc.entrypoint if doc.entrypoint is not None else (config.entrypoint or ())
    if doc.command is not None:
        cmd: tuple[str, ...] = doc.command
    elif doc.entrypoint is not None:
        cmd = ()  # a new entrypoint drops the image's Cmd
    else:
        cmd = config.cmd or ()
    argv = (*entrypoint, *cmd)
    if not argv:
        raise SpecError(f"container {doc.name}: no command (the image has neither "
                        "Entrypoint nor Cmd, and the manifest gives no command)")
    return argv


def _env(doc: Container, config: ImageConfig) -> tuple[str, ...]:
    merged: dict[str, str] = {}
    for entry in config.env:
        key, _, value = entry.partition("=")
        if key:
            merged[key] = value
    for key, given in doc.environment.items():
        if given is None:
            merged.pop(key, None)
        else:
            merged[key] = given
    merged.setdefault("PATH", DEFAULT_PATH)
    return tuple(f"{k}={v}" for k, v in merged.items())


def _working_dir(doc: Container, config: ImageConfig) -> str:
    """A working dir on the kernel's own filesystems could reach the host through
    ``/proc/self/fd`` (runc's CVE-2024-21626): refused, from the image or the manifest."""
    working_dir = normalize_path(doc.working_dir or config.working_dir or "/")
    if any(working_dir == top or working_dir.startswith(top + "/")
           for top in KERNEL_DIRS):
        raise SpecError(f"container {doc.name}: working dir {working_dir} is inside "
                        f"{', '.join(KERNEL_DIRS)}, which the runtime mounts: refused")
    return working_dir


def _image_volumes(doc: Container, config: ImageConfig) -> tuple[str, ...]:
    """The image's VOLUMEs not covered by the manifest; one that climbs (``..``) or names
    the root is refused: the image is not trusted to choose what gets mounted where."""
    covered = {volume.target for volume in doc.volumes}
    found = []
    for raw in config.volumes:
        target = normalize_path("/" + raw.lstrip("/"))
        if ".." in raw.split("/") or target == "/" or any(
                target == top or target.startswith(top + "/") for top in KERNEL_DIRS):
            raise SpecError(f"container {doc.name}: the image declares VOLUME {raw!r}, "
                            "which is not a plain path below / : refused")
        if target not in covered:
            found.append(target)
    return tuple(dict.fromkeys(found))


def compose_spec(doc: Container, config: ImageConfig, image_digest: str) -> ContainerSpec:
    anonymous = _image_volumes(doc, config)
    labels = {**config.labels, **{k: v or "" for k, v in doc.labels.items()}}
    return ContainerSpec(
        name=doc.name,
        image=doc.image,
        image_digest=image_digest,
        argv=_argv(doc, config),
        env=_env(doc, config),
        working_dir=_working_dir(doc, config),
        user=doc.user if doc.user is not None else config.user,
        hostname=doc.hostname,
        stop_signal=config.stop_signal or DEFAULT_STOP_SIGNAL,
        ports=tuple(str(mapping) for mapping in doc.ports),
        volumes=tuple(str(volume) for volume in doc.volumes),
        anonymous_volumes=anonymous,
        restart=doc.restart,
        labels=tuple(sorted(labels.items())),
        mem_limit=doc.mem_limit,
        cpus=doc.cpus,
        pids_limit=doc.pids_limit,
        network=doc.network,
        volumes_from=doc.volumes_from,
    )


def spec_hash(spec: ContainerSpec) -> str:
    """``v<version>:<sha256>`` of the normalized spec: stored with the container."""
    return f"v{spec.version}:" + hashlib.sha256(spec.to_json().encode()).hexdigest()
