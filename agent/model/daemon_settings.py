"""Validation of daemon.json keys, so a typo never reaches dockerd.

dockerd refuses to start when daemon.json holds a key it does not know, so an
unknown key is an error here too (``allow_unknown_keys: true`` for keys newer
than this list). Value checks follow moby's own (registry/config.go:
ValidateMirror, insecure registries as host[:port] or CIDR).
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from agent.model.syntax.errors import SyntaxProblem

# Keys that moby's daemon/reload.go applies on SIGHUP (docs: "Configuration reload behavior").
RELOADABLE_KEYS = frozenset({
    "debug", "labels", "live-restore", "max-concurrent-downloads", "max-concurrent-uploads",
    "max-download-attempts", "default-runtime", "runtimes", "authorization-plugins",
    "insecure-registries", "registry-mirrors", "allow-nondistributable-artifacts",
    "shutdown-timeout", "features", "builder",
})

_HOST_PORT = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?\Z"
)


def _bool(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise SyntaxProblem(f"{key} must be true or false")


def _str(key: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise SyntaxProblem(f"{key} must be a non-empty string")


def _abs_path(key: str, value: Any) -> None:
    if not isinstance(value, str) or not value.startswith("/"):
        raise SyntaxProblem(f"{key} must be an absolute path")


def _int_at_least(minimum: int) -> Callable[[str, Any], None]:
    def check(key: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SyntaxProblem(f"{key} must be an integer >= {minimum}")
    return check


def _str_list(key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SyntaxProblem(f"{key} must be a list of non-empty strings")
    if len(set(value)) != len(value):
        raise SyntaxProblem(f"{key} lists an entry twice")
    return value


def _str_map(key: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise SyntaxProblem(f"{key} must be a mapping of strings to strings")
    for sub_key, item in value.items():
        if not isinstance(item, str):
            raise SyntaxProblem(f"{key}: {sub_key} must be a string (quote numbers)",
                                at=(sub_key,))


def _redacted(url: str) -> str:
    """The URL as it may appear in an error message: no password, ever."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:  # up to the last '@': a password may hold '/' or '@'
        return f"{scheme}://*****@{rest.rsplit('@', 1)[1]}"
    return url


def validate_mirror(url: str) -> None:
    """As dockerd: http(s), a host, no credentials, no path/query/fragment."""
    shown = _redacted(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. "Invalid IPv6 URL"
        raise SyntaxProblem(f"mirror {shown!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SyntaxProblem(f"mirror {shown!r} must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise SyntaxProblem(f"mirror {shown!r}: credentials do not belong in the URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise SyntaxProblem(f"mirror {shown!r}: dockerd refuses a path, query or fragment")
    try:
        parts.port  # noqa: B018 - raises on an out-of-range port
    except ValueError:
        raise SyntaxProblem(f"mirror {shown!r} has an invalid port") from None


def validate_insecure_registry(entry: str) -> None:
    """``host[:port]`` or a CIDR, never a URL (dockerd rejects '://')."""
    if "://" in entry:
        raise SyntaxProblem(f"insecure registry {entry!r} must be host[:port] or a CIDR, not a URL")
    if "/" in entry:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise SyntaxProblem(f"insecure registry {entry!r} is not a valid CIDR") from None
        return
    if not _HOST_PORT.match(entry):
        raise SyntaxProblem(f"insecure registry {entry!r} is not host[:port]")
    _, _, port = entry.rpartition("]:") if entry.startswith("[") else entry.rpartition(":")
    if port.isdigit() and not 0 < int(port) < 65536:
        raise SyntaxProblem(f"insecure registry {entry!r}: port out of range")


def _each(check: Callable[[str], None]) -> Callable[[str, Any], None]:
    """A list check that points at the offending entry."""
    def check_list(key: str, value: Any) -> None:
        for index, entry in enumerate(_str_list(key, value)):
            try:
                check(entry)
            except SyntaxProblem as exc:
                raise SyntaxProblem(str(exc), at=(index,)) from None
    return check_list


def _ip_address(entry: str) -> None:
    try:
        ipaddress.ip_address(entry)
    except ValueError:
        raise SyntaxProblem(f"{entry!r} is not an IP address") from None


_mirrors = _each(validate_mirror)
_insecure = _each(validate_insecure_registry)
_ip_list = _each(_ip_address)


def _cidr(key: str, value: Any) -> None:
    try:
        ipaddress.ip_interface(value if isinstance(value, str) else "")
    except ValueError:
        raise SyntaxProblem(f"{key} must be an address with prefix, e.g. 10.99.0.1/24") from None


def _log_level(key: str, value: Any) -> None:
    if value not in ("debug", "info", "warn", "error", "fatal"):
        raise SyntaxProblem(f"{key} must be debug, info, warn, error or fatal")


def _any(key: str, value: Any) -> None:
    """Structured keys dockerd validates itself (runtimes, pools, proxies, ...)."""


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "registry-mirrors": _mirrors, "insecure-registries": _insecure,
    "allow-nondistributable-artifacts": _str_list,
    "debug": _bool, "live-restore": _bool, "experimental": _bool, "iptables": _bool,
    "ip6tables": _bool, "ip-forward": _bool, "ip-masq": _bool, "ipv6": _bool, "icc": _bool,
    "selinux-enabled": _bool, "userland-proxy": _bool, "no-new-privileges": _bool, "init": _bool,
    "raw-logs": _bool, "tls": _bool, "tlsverify": _bool,
    "labels": _str_list, "exec-opts": _str_list, "storage-opts": _str_list, "dns-opts": _str_list,
    "dns-search": _str_list, "hosts": _str_list, "authorization-plugins": _str_list,
    "cdi-spec-dirs": _str_list, "dns": _ip_list,
    "log-driver": _str, "log-level": _log_level, "log-format": _str, "storage-driver": _str,
    "default-runtime": _str, "cgroup-parent": _str, "userns-remap": _str, "group": _str,
    "default-cgroupns-mode": _str, "default-ipc-mode": _str, "default-shm-size": _str,
    "bridge": _str, "ip": _str, "host-gateway-ip": _str, "metrics-addr": _str,
    "seccomp-profile": _str, "containerd": _abs_path, "containerd-namespace": _str,
    "containerd-plugins-namespace": _str, "api-cors-header": _str,
    "swarm-default-advertise-addr": _str,
    "tlscacert": _abs_path, "tlscert": _abs_path, "tlskey": _abs_path, "pidfile": _abs_path,
    "data-root": _abs_path, "exec-root": _abs_path, "init-path": _abs_path,
    "userland-proxy-path": _abs_path,
    "bip": _cidr, "fixed-cidr": _cidr, "fixed-cidr-v6": _cidr, "default-gateway": _str,
    "default-gateway-v6": _str,
    "mtu": _int_at_least(68), "max-concurrent-downloads": _int_at_least(1),
    "max-concurrent-uploads": _int_at_least(1), "max-download-attempts": _int_at_least(1),
    "shutdown-timeout": _int_at_least(0), "oom-score-adjust": _int_at_least(-1000),
    "log-opts": _str_map, "runtimes": _any, "default-ulimits": _any,
    "default-address-pools": _any, "features": _any, "builder": _any, "proxies": _any,
    "node-generic-resources": _any, "default-network-opts": _any,
}

KNOWN_KEYS = frozenset(_CHECKS)


def validate_settings(settings: dict[str, Any], allow_unknown_keys: bool) -> None:
    """Raise ``SyntaxProblem`` naming the first bad key; values must be plain JSON."""
    for key, value in settings.items():
        try:
            _check_one(key, value, allow_unknown_keys)
        except SyntaxProblem as exc:
            raise SyntaxProblem(str(exc), at=(key, *exc.at), at_key=exc.at_key) from None


def _check_one(key: str, value: Any, allow_unknown_keys: bool) -> None:
    _require_json(key, value)
    check = _CHECKS.get(key)
    if check is None:
        if allow_unknown_keys:
            return
        close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SyntaxProblem(
            f"{key!r} is not a daemon.json key dockerd knows{hint}; dockerd refuses to "
            "start with unknown keys (set allow_unknown_keys: true for newer ones)",
            at_key=True,
        )
    check(key, value)


def _require_json(key: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise SyntaxProblem(f"{key}: JSON cannot hold {value}")
    if value is None or isinstance(value, str | bool | int | float):
        return
    if isinstance(value, list):
        for item in value:
            _require_json(key, item)
        return
    if isinstance(value, dict):
        for sub_key, item in value.items():
            if not isinstance(sub_key, str):
                raise SyntaxProblem(f"{key}: mapping keys must be strings")
            _require_json(key, item)
        return
    raise SyntaxProblem(
        f"{key}: YAML read a value as {type(value).__name__}, which JSON cannot hold; quote it"
    )
