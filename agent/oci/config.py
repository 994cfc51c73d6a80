"""ImageConfig: what the runtime needs from an image's config blob, checked on parse."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.errors import UnsupportedManifest
from agent.oci.media import Platform, is_digest, json_object

MAX_CONFIG = 8 << 20  # an image config larger than this is refused before download


@dataclass(frozen=True)
class ImageConfig:
    platform: Platform
    diff_ids: tuple[str, ...]
    created: str | None = None
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def _strings(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UnsupportedManifest(f"image config: {where} must be a list of strings")
    return tuple(value)


def parse_config(body: bytes) -> ImageConfig:
    data = json_object(body, "the image config")
    rootfs = data.get("rootfs") or {}
    diff_ids = _strings(rootfs.get("diff_ids") if isinstance(rootfs, dict) else None,
                        "rootfs.diff_ids") or ()
    bad = [d for d in diff_ids if not is_digest(d)]
    if bad:
        raise UnsupportedManifest(f"image config: diff_id {bad[0]!r} is not sha256:<hex>")
    run = data.get("config") or {}
    if not isinstance(run, dict):
        raise UnsupportedManifest("image config: config must be an object")
    labels = run.get("Labels") or {}
    variant = data.get("variant")
    return ImageConfig(
        platform=Platform(str(data.get("os") or "linux"), str(data.get("architecture") or ""),
                          variant if isinstance(variant, str) and variant else None),
        diff_ids=diff_ids,
        created=data.get("created") if isinstance(data.get("created"), str) else None,
        entrypoint=_strings(run.get("Entrypoint"), "Entrypoint"),
        cmd=_strings(run.get("Cmd"), "Cmd"),
        env=_strings(run.get("Env"), "Env") or (),
        working_dir=str(run.get("WorkingDir") or ""),
        user=str(run.get("User") or ""),
        exposed_ports=tuple(sorted(run.get("ExposedPorts") or {})),
        volumes=tuple(sorted(run.get("Volumes") or {})),
        stop_signal=run.get("StopSignal") if isinstance(run.get("StopSignal"), str) else None,
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
    )
