"""The host bridge every container's veth is enslaved to: created with the subnet's
gateway address and up, and IPv4 forwarding on (as dockerd does at start), idempotently.

A new bridge refuses a subnet that overlaps an address or route the host already has
(docker does the same), which would silently steal traffic from the host's own networks.
"""

from __future__ import annotations

import errno
import socket
from ipaddress import IPv4Interface, IPv4Network, ip_network
from pathlib import Path

from agent.runtime.network import rtnl
from agent.runtime.network.errors import InvalidNetworkConfig

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
_MAIN_TABLE = 254


def ensure_bridge(name: str, gateway: IPv4Interface) -> int:
    """Make sure bridge ``name`` exists, holds ``gateway`` (address/prefix) and is up;
    its interface index."""
    with rtnl.host() as ipr:
        index = rtnl.link_index(ipr, name)
        if index is None:
            _refuse_overlap(ipr, gateway.network)
            with rtnl.mapped(f"create bridge {name}", errno.EEXIST):  # another agent won
                ipr.link("add", ifname=name, kind="bridge")
            index = rtnl.link_index(ipr, name)
            if index is None:
                raise InvalidNetworkConfig(f"bridge {name} vanished while being created")
        kind = rtnl.link_kind(rtnl.link(ipr, index))
        if kind != "bridge":
            raise InvalidNetworkConfig(f"{name} exists and is a {kind or 'plain'} link, "
                                       "not a bridge")
        if (str(gateway.ip), gateway.network.prefixlen) not in rtnl.ipv4_addresses(ipr, index):
            with rtnl.mapped(f"add {gateway} to {name}", errno.EEXIST):
                ipr.addr("add", index=index, address=str(gateway.ip),
                         prefixlen=gateway.network.prefixlen)
        with rtnl.mapped(f"set {name} up"):
            ipr.link("set", index=index, state="up")
    enable_ip_forward()
    return index


def remove_bridge(name: str) -> bool:
    """Delete bridge ``name`` (its ports are released, not deleted); whether it existed."""
    with rtnl.host() as ipr:
        return rtnl.delete_link(ipr, name)


def enable_ip_forward(path: Path = IP_FORWARD) -> None:
    """Published ports and egress are routed through the host: without forwarding, only
    the host itself reaches its containers."""
    if path.read_text().strip() != "1":
        path.write_text("1\n")


def _refuse_overlap(ipr: rtnl.Rtnl, subnet: IPv4Network) -> None:
    for message in ipr.get_addr(family=socket.AF_INET):
        taken = ip_network(f"{message.get('address')}/{message.get('prefixlen')}", strict=False)
        if taken.overlaps(subnet):
            raise InvalidNetworkConfig(f"subnet {subnet} overlaps {taken}, an address of "
                                       "this host: choose another subnet")
    for route in ipr.get_routes(family=socket.AF_INET, table=_MAIN_TABLE):
        if route.get("dst_len") and route.get("dst"):
            taken = ip_network(f"{route.get('dst')}/{route.get('dst_len')}", strict=False)
            if taken.overlaps(subnet):
                raise InvalidNetworkConfig(f"subnet {subnet} overlaps the route to {taken} "
                                           "on this host: choose another subnet")
