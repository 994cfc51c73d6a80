"""Docker's ``-v`` / compose ``volumes:`` syntax.

Short form ``SOURCE:TARGET[:OPTIONS]`` or ``TARGET`` alone (an anonymous volume).
SOURCE is an absolute host path (a bind mount), a relative one (``./conf``,
``../data``: resolved against the manifest's directory, as compose resolves
against the compose file; ``~/x`` is refused), or a volume name (``data``). Long form:
compose's mapping with ``type``, ``source``, ``target``, ``read_only``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

from agent.model.syntax.errors import SyntaxProblem
from agent.model.syntax.paths import normalize_path

VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,127}\Z")  # dockerd: 2 characters or more
_OPTIONS = {"ro", "rw", "z", "Z", "nocopy", "shared", "rshared", "slave", "rslave",
            "private", "rprivate"}
_MAX_PATH = 4096


class VolumeMount(BaseModel):
    """A bind mount (``type == "bind"``) or a named/anonymous volume (``"volume"``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["bind", "volume"]
    source: str | None = None
    target: str
    read_only: bool = False
    options: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _from_short_or_long(cls, value: Any, info: ValidationInfo) -> Any:
        base_dir = (info.context or {}).get("base_dir")
        if isinstance(value, str):
            return parse_volume_short(value, base_dir)
        if isinstance(value, dict):
            return _normalize_long(value, base_dir)
        raise SyntaxProblem(f"a volume must be a string or a mapping, not {type(value).__name__}")

    def __str__(self) -> str:
        opts = ",".join(("ro" if self.read_only else "rw", *self.options))
        return f"{self.source}:{self.target}:{opts}" if self.source else self.target


def _container_path(text: str) -> str:
    if not text.startswith("/"):
        raise SyntaxProblem(f"container path {text!r} must be absolute")
    if len(text) > _MAX_PATH or "\0" in text:
        raise SyntaxProblem("container path is too long or holds a NUL byte")
    normalized = normalize_path(text)
    if normalized == "/":
        raise SyntaxProblem("a volume cannot be mounted over the container's /")
    return normalized


def _host_source(text: str, base_dir: str | None) -> tuple[Literal["bind", "volume"], str]:
    if len(text) > _MAX_PATH or "\0" in text:
        raise SyntaxProblem("host path is too long or holds a NUL byte")
    if text.startswith("/"):
        return "bind", normalize_path(text)
    if text.startswith(("./", "../", "~")) or text in (".", ".."):
        if text.startswith("~"):
            raise SyntaxProblem(f"host path {text!r}: '~' is ambiguous on a remote host; "
                                "write an absolute path")
        if base_dir is None:
            raise SyntaxProblem(f"relative host path {text!r} needs the manifest's directory")
        return "bind", normalize_path(str(PurePosixPath(base_dir) / text))
    if VOLUME_NAME.match(text):
        return "volume", text
    raise SyntaxProblem(
        f"volume source {text!r} is neither an absolute path, a ./relative path, "
        "nor a volume name ([A-Za-z0-9][A-Za-z0-9_.-]*)"
    )


def parse_volume_short(text: str, base_dir: str | None) -> dict[str, Any]:
    """Parse ``SOURCE:TARGET[:OPTIONS]`` (or ``TARGET``) into the long form's fields."""
    parts = text.split(":")
    if len(parts) == 1:
        return {"type": "volume", "target": _container_path(parts[0])}
    if len(parts) > 3:
        raise SyntaxProblem(f"volume {text!r} has too many ':' (form: source:target[:options])")
    kind, source = _host_source(parts[0], base_dir)
    options = parts[2].split(",") if len(parts) == 3 else []
    for option in options:
        if option not in _OPTIONS:
            raise SyntaxProblem(f"volume option {option!r} is not one of {sorted(_OPTIONS)}")
    if "ro" in options and "rw" in options:
        raise SyntaxProblem("a volume cannot be both 'ro' and 'rw'")
    return {
        "type": kind,
        "source": source,
        "target": _container_path(parts[1]),
        "read_only": "ro" in options,
        "options": tuple(o for o in options if o not in ("ro", "rw")),
    }


def _normalize_long(value: dict[str, Any], base_dir: str | None) -> dict[str, Any]:
    unknown = set(value) - {"type", "source", "target", "read_only", "options"}
    if unknown:
        raise SyntaxProblem(f"unknown volume keys: {', '.join(sorted(map(str, unknown)))}")
    declared = value.get("type", "volume")
    if declared not in ("bind", "volume"):
        raise SyntaxProblem(f"volume type {declared!r} is not 'bind' or 'volume'")
    target = value.get("target")
    if not isinstance(target, str):
        raise SyntaxProblem("a volume needs 'target', the path inside the container")
    read_only = value.get("read_only", False)
    if not isinstance(read_only, bool):
        raise SyntaxProblem("'read_only' must be true or false")
    options = value.get("options", ())
    if not isinstance(options, list | tuple) or not all(
        isinstance(o, str) and o in _OPTIONS - {"ro", "rw"} for o in options
    ):
        raise SyntaxProblem(f"volume 'options' must be a list of {sorted(_OPTIONS - {'ro', 'rw'})}"
                            " (use 'read_only' for ro/rw)")
    result: dict[str, Any] = {"type": declared, "target": _container_path(target),
                              "read_only": read_only, "options": tuple(options)}
    source = value.get("source")
    if source is not None:
        if not isinstance(source, str):
            raise SyntaxProblem("volume 'source' must be a string")
        kind, resolved = _host_source(source, base_dir)
        if kind != declared:
            raise SyntaxProblem(f"source {source!r} is a {kind} source but type is {declared!r}")
        result["source"] = resolved
    elif declared == "bind":
        raise SyntaxProblem("a bind mount needs 'source', the host path")
    return result
