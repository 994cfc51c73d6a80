"""Docker's ``-p`` / compose ``ports:`` syntax.

Short form: ``[[HOST_IP:][HOST_PORT[-END]]:]CONTAINER_PORT[-END][/PROTO]``
(``"3307:3306"``, ``"127.0.0.1:53:53/udp"``, ``"8080"``, ``"8000-8010:8000-8010"``,
``"[::1]:8080:80"``, ``"127.0.0.1::80"``). Long form: compose's mapping with
``target``, ``published``, ``host_ip``, ``protocol``. A missing host port means
"choose a free one when the container starts", as ``docker run -p 8080`` does.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.model.syntax.errors import SyntaxProblem

Protocol = Literal["tcp", "udp", "sctp"]
_RANGE = re.compile(r"^([0-9]{1,5})(?:-([0-9]{1,5}))?\Z")


class PortRange(BaseModel):
    """An inclusive port range; a single port has ``start == end``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    start: int = Field(ge=1, le=65535)
    end: int = Field(ge=1, le=65535)

    @model_validator(mode="after")
    def _ordered(self) -> PortRange:
        if self.end < self.start:
            raise SyntaxProblem(f"port range {self.start}-{self.end} ends before it starts")
        return self

    @property
    def size(self) -> int:
        return self.end - self.start + 1

    def __str__(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start}-{self.end}"


class PortMapping(BaseModel):
    """One published port (or range). ``published is None``: a free host port at start."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    target: PortRange
    published: PortRange | None = None
    host_ip: str | None = None
    protocol: Protocol = "tcp"

    @model_validator(mode="before")
    @classmethod
    def _from_short_or_long(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise SyntaxProblem("a port must be a string such as \"8080:80\", not a boolean")
        if isinstance(value, int):
            return {"target": _parse_range(str(value), "container port")}
        if isinstance(value, str):
            return parse_port_short(value)
        if isinstance(value, dict):
            return _normalize_long(value)
        raise SyntaxProblem(f"a port must be a string or a mapping, not {type(value).__name__}")

    @model_validator(mode="after")
    def _ranges_agree(self) -> PortMapping:
        # A host range with a single container port is allowed: docker picks one free port.
        if self.published is not None and self.target.size not in (self.published.size, 1):
            raise SyntaxProblem(
                f"host range {self.published} and container range {self.target} differ in length"
            )
        return self

    def __str__(self) -> str:
        host = f"{self.host_ip}:" if self.host_ip else ""
        if self.host_ip and ":" in self.host_ip:
            host = f"[{self.host_ip}]:"
        published = str(self.published) if self.published else ""
        prefix = f"{host}{published}:" if host or published else ""
        return f"{prefix}{self.target}/{self.protocol}"


def _parse_range(text: str, what: str) -> dict[str, int]:
    match = _RANGE.match(text)
    if not match:
        raise SyntaxProblem(f"{what} {text!r} is not a port or a range like 8000-8010")
    start = int(match.group(1))
    end = int(match.group(2) or start)
    for port in (start, end):
        if not 1 <= port <= 65535:
            raise SyntaxProblem(f"{what} {port} is outside 1-65535")
    return {"start": start, "end": end}


def _parse_host_ip(text: str) -> str:
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        raise SyntaxProblem(f"host address {text!r} is not an IP address") from None


def parse_port_short(text: str) -> dict[str, Any]:
    """Parse the short ``-p`` syntax into the long form's fields."""
    spec, _, proto = text.strip().partition("/")
    if not spec:
        raise SyntaxProblem("empty port specification")
    protocol = proto.lower() if proto else "tcp"
    if protocol not in ("tcp", "udp", "sctp"):
        raise SyntaxProblem(f"protocol {proto!r} is not tcp, udp or sctp")
    host_ip: str | None = None
    if spec.startswith("["):  # [IPv6]:host:container
        close = spec.find("]")
        if close < 0 or spec[close + 1 : close + 2] != ":":
            raise SyntaxProblem(f"port {text!r}: an IPv6 host address is written [addr]:port:port")
        host_ip = _parse_host_ip(spec[: close + 1])
        parts = ["", *spec[close + 2 :].split(":")]
        if len(parts) != 3:
            raise SyntaxProblem(f"port {text!r}: an IPv6 host address is written [addr]:port:port")
    else:
        parts = spec.split(":")
    if len(parts) > 3:
        raise SyntaxProblem(f"port {text!r} has too many ':' (form: [ip:][host:]container)")
    result: dict[str, Any] = {"protocol": protocol}
    result["target"] = _parse_range(parts[-1], "container port")
    if len(parts) >= 2 and parts[-2]:
        result["published"] = _parse_range(parts[-2], "host port")
    if len(parts) == 3 and host_ip is None:
        if not parts[0]:
            raise SyntaxProblem(f"port {text!r}: empty host address")
        host_ip = _parse_host_ip(parts[0])
    if host_ip is not None:
        result["host_ip"] = host_ip
    return result


def _normalize_long(value: dict[str, Any]) -> dict[str, Any]:
    unknown = set(value) - {"target", "published", "host_ip", "protocol", "mode"}
    if unknown:
        raise SyntaxProblem(f"unknown port keys: {', '.join(sorted(map(str, unknown)))}")
    if value.get("mode", "ingress") not in ("ingress", "host"):
        raise SyntaxProblem("port mode must be 'ingress' or 'host'")
    result: dict[str, Any] = {"protocol": value.get("protocol", "tcp")}
    for key, what in (("target", "container port"), ("published", "host port")):
        raw = value.get(key)
        if raw is None:
            continue
        if isinstance(raw, dict):
            result[key] = raw
        elif isinstance(raw, bool) or not isinstance(raw, int | str):
            raise SyntaxProblem(f"{what} must be a number or a range string")
        else:
            result[key] = _parse_range(str(raw), what)
    if "target" not in result:
        raise SyntaxProblem("a port mapping needs 'target' (the container port)")
    if value.get("host_ip") is not None:
        result["host_ip"] = _parse_host_ip(str(value["host_ip"]))
    return result
