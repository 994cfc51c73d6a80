"""A container's /etc/hosts, /etc/hostname and /etc/resolv.conf, as docker writes them.

Pure functions returning text, standard library only (the monitor may import them). The
resolv.conf rule is libnetwork's: the host's file without loopback nameservers (they
mean the host's own resolver, unreachable from the container's namespace) and, since
pyprov's containers have no IPv6, without IPv6 ones; if none remain, Google's public
servers; search and options lines kept.
"""

from __future__ import annotations

import re
from pathlib import Path

DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
SYSTEMD_RESOLVED_STUB = "127.0.0.53"
SYSTEMD_RESOLVED_UPSTREAM = Path("/run/systemd/resolve/resolv.conf")
HOST_RESOLV_CONF = Path("/etc/resolv.conf")

# libnetwork's etchosts defaultContent, in its order.
_DEFAULT_HOSTS = (("127.0.0.1", "localhost"),
                  ("::1", "localhost ip6-localhost ip6-loopback"),
                  ("fe00::0", "ip6-localnet"),
                  ("ff00::0", "ip6-mcastprefix"),
                  ("ff02::1", "ip6-allnodes"),
                  ("ff02::2", "ip6-allrouters"))
_NAMESERVER = re.compile(r"^\s*nameserver\s+(\S+)", re.MULTILINE)


def hosts(hostname: str, ip: str | None, domainname: str = "",
          extra: tuple[tuple[str, str], ...] = ()) -> str:
    """docker's /etc/hosts: the fixed localhost and IPv6 lines, ``extra`` (--add-host:
    (host, ip) pairs), then the container's own address (none with ``--network none``)."""
    lines = [f"{address}\t{names}" for address, names in _DEFAULT_HOSTS]
    lines += [f"{address}\t{host}" for host, address in extra]
    if ip:
        names = f"{hostname}.{domainname} {hostname}" if domainname else hostname
        lines.append(f"{ip}\t{names}")
    return "\n".join(lines) + "\n"


def hostname_file(hostname: str) -> str:
    return f"{hostname}\n"


def nameservers(resolv_conf: str) -> list[str]:
    return _NAMESERVER.findall(resolv_conf)


def resolv_conf(host_text: str) -> str:
    """The container's resolv.conf from the host's (see the module's docstring)."""
    kept = [line for line in host_text.splitlines() if not _dropped(line)]
    text = "\n".join(kept).rstrip("\n")
    if not nameservers(text):
        defaults = "\n".join(f"nameserver {server}" for server in DEFAULT_NAMESERVERS)
        text = f"{text}\n{defaults}" if text else defaults
    return text + "\n"


def host_resolv_conf(path: Path = HOST_RESOLV_CONF,
                     upstream: Path = SYSTEMD_RESOLVED_UPSTREAM) -> Path:
    """Which host file to derive from: with systemd-resolved's stub as the only
    nameserver, the upstream list it keeps (docker's choice too), else ``path``."""
    try:
        if nameservers(path.read_text()) == [SYSTEMD_RESOLVED_STUB] and upstream.is_file():
            return upstream
    except OSError:
        pass
    return path


def _dropped(line: str) -> bool:
    match = _NAMESERVER.match(line)
    if match is None:
        return False
    server = match.group(1)
    return server.startswith("127.") or ":" in server  # loopback, and IPv6 (incl. ::1)
