"""The one boundary to pyroute2: netlink sockets on the host or inside a namespace, and
its errors mapped to ``LinkError`` here, so no other module catches pyroute2's types.

pyroute2 is imported on first use (the monitor imports this package's proxy and must
not pay for it) and ships no type information: its messages are ``Any`` here and the
helpers below turn them into plain ints and strings.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.runtime.network.errors import LinkError, NetnsError

Rtnl = Any  # a pyroute2 IPRoute: untyped


@contextlib.contextmanager
def mapped(operation: str, *ignore: int) -> Iterator[None]:
    """Turn pyroute2's ``NetlinkError`` into ``LinkError(operation, errno)``; the errnos
    in ``ignore`` (EEXIST for "already there", ENODEV for "already gone") pass silently."""
    from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

    try:
        yield
    except NetlinkError as error:
        if error.code in ignore:
            return
        raise LinkError(operation, int(error.code), str(error)) from None


def _iproute(**options: object) -> Rtnl:
    from pyroute2 import IPRoute  # type: ignore[import-untyped]

    return IPRoute(**options)


@contextlib.contextmanager
def host() -> Iterator[Rtnl]:
    with mapped("open a netlink socket"):
        ipr = _iproute()
    with ipr, mapped("netlink"):
        yield ipr


@contextlib.contextmanager
def inside(netns_path: Path) -> Iterator[Rtnl]:
    """A netlink socket inside the namespace at ``netns_path``, which must exist: flags=0,
    since pyroute2's default (O_CREAT) would make a namespace where none is."""
    try:
        ipr = _iproute(netns=str(netns_path), flags=0)
    except OSError as error:
        raise NetnsError(str(netns_path), f"cannot enter: {error}") from None
    with ipr, mapped(f"netlink in {netns_path}"):
        yield ipr


def link_index(ipr: Rtnl, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def link(ipr: Rtnl, index: int) -> Any:
    return ipr.get_links(index)[0]


def link_kind(message: Any) -> str | None:
    kind = message.get(("linkinfo", "kind"))
    return str(kind) if kind is not None else None


def delete_link(ipr: Rtnl, name: str) -> bool:
    """Delete the link called ``name``; whether there was one."""
    index = link_index(ipr, name)
    if index is None:
        return False
    with mapped(f"delete link {name}", errno.ENODEV):
        ipr.link("del", index=index)
    return True


def ipv4_addresses(ipr: Rtnl, index: int) -> list[tuple[str, int]]:
    return [(str(address.get("address")), int(address.get("prefixlen")))
            for address in ipr.get_addr(index=index, family=socket.AF_INET)]
