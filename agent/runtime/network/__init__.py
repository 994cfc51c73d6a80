"""Container networking: one bridge, a veth pair and a network namespace per container,
addresses from a locked allocator, egress NAT, published ports with kernel NAT rules plus
a user-space proxy for loopback, and the container's hosts/hostname/resolv.conf.

    ipam.py      addresses on the subnet, shared by every agent process (flock)
    bridge.py    the bridge, its gateway address, IPv4 forwarding
    netns.py     persistent namespaces at paths in pyprov's state dir
    links.py     the veth pair, eth0's address, MAC and default route
    attach.py    attach/detach in steps, from and into the record (records.py)
    nat.py       pyprov's iptables chains: MASQUERADE, DNAT, FORWARD accepts
    ports.py     -p mappings to concrete ports, held by real sockets
    proxy.py     the loopback proxy the monitor runs (standard library only)
    files.py     /etc/hosts, /etc/hostname, /etc/resolv.conf (standard library only)
    facade.py    ``Network``: reserve, attach, publish, detach, in that order

The package itself imports nothing: the monitor zygote imports ``proxy`` (and nothing of
pyroute2, pydantic or subprocess may come with it), so ``Network``, ``Attachment``,
``PublishedPort`` and ``NetworkError`` are loaded on first use.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing itself is not imported for the monitor's sake
if TYPE_CHECKING:
    from agent.runtime.network.errors import NetworkError
    from agent.runtime.network.facade import Network
    from agent.runtime.network.records import Attachment, PublishedPort

_HOMES = {"Network": "facade", "Attachment": "records", "PublishedPort": "records",
          "NetworkError": "errors"}
__all__ = ["Attachment", "Network", "NetworkError", "PublishedPort"]


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
