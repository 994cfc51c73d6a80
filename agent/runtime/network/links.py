"""A container's veth pair: the host side enslaved to the bridge and up, the other side
``eth0`` inside the container's namespace with its address, MAC and default route.

The pair is made in one netlink request with its peer created directly inside the
namespace as ``eth0``, so no half-made pair ever sits in the host's namespace. Every step
checks before it acts: ``ensure`` both creates and repairs (a pair whose ends do not
match is deleted and made again; the namespace, and whatever runs in it, is kept).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from ipaddress import IPv4Address

from agent.runtime.network import rtnl
from agent.runtime.network.errors import InvalidNetworkConfig
from agent.runtime.network.records import Attachment

INSIDE_NAME = "eth0"
_HEX_ID = re.compile(r"[0-9a-f]{11,}\Z")


def host_veth_name(container_id: str) -> str:
    """``vp`` + 11 hex characters (IFNAMSIZ allows 15): the id's own prefix when the id is
    hex, as the runtime's are, so ``ip link`` names the container; else a digest."""
    if _HEX_ID.match(container_id):
        return "vp" + container_id[:11]
    return "vp" + hashlib.sha256(container_id.encode()).hexdigest()[:11]


def mac_for(ip: IPv4Address) -> str:
    """docker's MAC rule: 02:42 and the four address bytes, so a reused address gets the
    same MAC and neighbours' ARP caches stay right."""
    return "02:42:" + ":".join(f"{byte:02x}" for byte in ip.packed)


def ensure(attachment: Attachment) -> None:
    """Make (or repair) ``attachment``'s veth pair and configure both ends."""
    with rtnl.host() as ipr, rtnl.inside(attachment.netns_path) as ns:
        bridge = rtnl.link_index(ipr, attachment.bridge)
        if bridge is None:
            raise InvalidNetworkConfig(f"bridge {attachment.bridge} does not exist")
        index = _pair(ipr, ns, attachment)
        with rtnl.mapped(f"enslave {attachment.host_veth} to {attachment.bridge}"):
            ipr.link("set", index=index, master=bridge, state="up")
        _configure_inside(ns, attachment)


def remove(host_veth: str) -> bool:
    """Delete the pair by its host side (the kernel deletes ``eth0`` with it)."""
    with rtnl.host() as ipr:
        return rtnl.delete_link(ipr, host_veth)


def _pair(ipr: rtnl.Rtnl, ns: rtnl.Rtnl, attachment: Attachment) -> int:
    """The host side's index, after making the pair unless both ends are there and are
    each other's peer."""
    index = rtnl.link_index(ipr, attachment.host_veth)
    inside = rtnl.link_index(ns, INSIDE_NAME)
    peer = rtnl.link(ns, inside).get("link") if inside is not None else None
    if index is not None and inside is not None and peer == index:
        return index
    if index is not None:
        rtnl.delete_link(ipr, attachment.host_veth)
    if rtnl.link_index(ns, INSIDE_NAME) is not None:  # an eth0 paired with something else
        rtnl.delete_link(ns, INSIDE_NAME)
    fd = os.open(attachment.netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with rtnl.mapped(f"create veth {attachment.host_veth}"):
            ipr.link("add", ifname=attachment.host_veth, kind="veth",
                     peer={"ifname": INSIDE_NAME, "address": attachment.mac, "net_ns_fd": fd})
    finally:
        os.close(fd)
    created = rtnl.link_index(ipr, attachment.host_veth)
    if created is None:
        raise InvalidNetworkConfig(f"veth {attachment.host_veth} vanished after creation")
    return created


def _configure_inside(ns: rtnl.Rtnl, attachment: Attachment) -> None:
    index = rtnl.link_index(ns, INSIDE_NAME)
    if index is None:
        raise InvalidNetworkConfig(f"{INSIDE_NAME} vanished from {attachment.netns_path}")
    want = (str(attachment.ip), attachment.prefixlen)
    with rtnl.mapped(f"configure {INSIDE_NAME} in {attachment.netns_path}"):
        if str(rtnl.link(ns, index).get("address")).lower() != attachment.mac:
            ns.link("set", index=index, address=attachment.mac)
        for address, prefixlen in rtnl.ipv4_addresses(ns, index):
            if (address, prefixlen) != want:
                ns.addr("del", index=index, address=address, prefixlen=prefixlen)
        if want not in rtnl.ipv4_addresses(ns, index):
            ns.addr("add", index=index, address=want[0], prefixlen=want[1])
        ns.link("set", index=index, state="up")
        lo = rtnl.link_index(ns, "lo")
        if lo is not None:
            ns.link("set", index=lo, state="up")
    with rtnl.mapped(f"default route via {attachment.gateway}", errno.EEXIST):
        ns.route("replace", dst="0.0.0.0/0", gateway=str(attachment.gateway), oif=index)
