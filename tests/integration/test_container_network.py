"""The container network on this host's kernel: namespaces, veth pairs, the bridge and
iptables rules made for real, busybox's httpd serving inside a container's namespace and
a second namespace playing another host (its own veth pair to this host, routed through
it). The httpd answers a CGI with the address it sees the request come from, which tells
the paths apart: DNAT keeps the client's address, the proxy connects from the gateway,
MASQUERADE replaces the container's.

Every test has its own bridge, subnet, chain prefix, container ids and state dir, and a
scrubber that does not trust the code under test removes links, namespaces, rules and
processes afterwards, pass or fail. One test runs in a private network namespace, where
it can set the FORWARD policy to DROP (as docker does) without touching the host's.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import secrets
import shlex
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_network
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import IPRoute

from agent.model.syntax.ports import PortMapping
from agent.runtime import linux
from agent.runtime.network import Attachment, Network, links, netns
from agent.runtime.network.errors import InvalidNetworkConfig, PortInUse
from agent.runtime.network.ports import ANY
from agent.runtime.network.proxy import Proxy
from agent.runtime.network.records import PublishedPort
from tests.conftest import REPO
from tests.waiting import poll

BUSYBOX = "/bin/busybox"
TIMEOUT = 20.0
PEER_CGI = '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s\\n" "$REMOTE_ADDR"\n'
UDP_ECHO = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
while True:
    data, peer = sock.recvfrom(65535)
    sock.sendto(data.upper() + b" from " + peer[0].encode(), peer)
"""
CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    print("connected")
except TimeoutError:
    print("timeout")
except OSError as error:
    print(error)
"""
UDP_ASK = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(float(sys.argv[3]))
sock.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
print(sock.recvfrom(65535)[0].decode())
"""


# --- names, and the scrubber ---------------------------------------------------------------

@dataclass(frozen=True)
class Names:
    token: str
    bridge: str
    prefix: str
    subnet: IPv4Network
    link: IPv4Network     # the second namespace's link to this host, a /30
    client_veth: str

    def container(self, n: int) -> str:
        return f"{self.token}{n:02d}".ljust(64, "0")  # 64 hex characters, as the runtime's


def taken_networks() -> list[IPv4Network]:
    with IPRoute() as ipr:
        taken = [ip_network(f"{a.get('address')}/{a.get('prefixlen')}", strict=False)
                 for a in ipr.get_addr(family=socket.AF_INET)]
        taken += [ip_network(f"{r.get('dst')}/{r.get('dst_len')}", strict=False)
                  for r in ipr.get_routes(family=socket.AF_INET, table=254)
                  if r.get("dst_len")]
    return [net for net in taken if isinstance(net, IPv4Network)]


def free_network(base: str, prefixlen: int) -> IPv4Network:
    candidates = list(IPv4Network(base).subnets(new_prefix=prefixlen))
    taken = taken_networks()
    for candidate in random.sample(candidates, len(candidates)):
        if not any(candidate.overlaps(net) for net in taken):
            return candidate
    raise AssertionError(f"no free /{prefixlen} left in {base}")


def make_names() -> Names:
    token = secrets.token_hex(4)
    return Names(token=token, bridge=f"pt{token}", prefix=f"PT{token.upper()}",
                 subnet=free_network("10.86.0.0/16", 24), link=free_network("10.85.0.0/16", 30),
                 client_veth=f"pc{token}")


def iptables_save() -> str:
    return subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout


def rules_mentioning(word: str) -> list[str]:
    return [line for line in iptables_save().splitlines() if word in line]


def scrub(names: Names, state_dir: Path) -> None:
    """Remove everything a test of ``names`` may have made, by name, without the code
    under test: links, namespace mounts under ``state_dir``, iptables rules and chains."""
    with IPRoute() as ipr:
        bridge = ipr.link_lookup(ifname=names.bridge)
        doomed = [link.get("index") for link in ipr.get_links()
                  if bridge and link.get("master") == bridge[0]]
        doomed += ipr.link_lookup(ifname=names.client_veth) + bridge
        doomed += [index for n in range(10)
                   for index in ipr.link_lookup(ifname=links.host_veth_name(names.container(n)))]
        for index in doomed:
            with contextlib.suppress(Exception):
                ipr.link("del", index=index)
    for path in state_dir.rglob("*"):
        if path.is_file() and path.stat().st_dev == Path("/proc/self/ns/net").stat().st_dev:
            with contextlib.suppress(OSError):
                linux.umount2(str(path), linux.MNT_DETACH)
    for table in ("nat", "filter"):
        listing = subprocess.run(["iptables", "-w", "-t", table, "-S"], capture_output=True,
                                 text=True, check=True).stdout.splitlines()
        for words in map(shlex.split, listing):
            if words[0] == "-A" and not words[1].startswith(names.prefix) \
                    and any(word.startswith(names.prefix) for word in words[2:]):
                subprocess.run(["iptables", "-w", "-t", table, "-D", *words[1:]], check=True)
        for words in map(shlex.split, listing):
            if words[0] == "-N" and words[1].startswith(names.prefix):
                subprocess.run(["iptables", "-w", "-t", table, "-F", words[1]], check=True)
                subprocess.run(["iptables", "-w", "-t", table, "-X", words[1]], check=True)


# --- helpers: processes, the second namespace, HTTP ------------------------------------------

Spawn = Callable[..., "subprocess.Popen[str]"]


@contextlib.contextmanager
def spawner() -> Iterator[Spawn]:
    children: list[subprocess.Popen[str]] = []

    def start(*argv: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        children.append(child)
        return child

    try:
        yield start
    finally:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            child.communicate(timeout=TIMEOUT)



def listening(pid: int, port: int) -> bool:
    """Whether the namespace ``pid`` is in has a TCP socket listening on ``port`` (httpd's
    is IPv6, dual-stack)."""
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    return True
    return False


def in_netns(path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net={path}", *argv], capture_output=True, text=True,
                          timeout=TIMEOUT * 2, check=False)


def httpd(spawn: Spawn, netns_path: Path, port: int, www: Path) -> None:
    """busybox httpd inside ``netns_path``, serving the peer-address CGI; returns once it
    listens."""
    server = spawn("nsenter", f"--net={netns_path}", BUSYBOX, "httpd", "-f", "-p", str(port),
                   "-h", str(www))
    assert poll(lambda: listening(server.pid, port) or server.poll() is not None)
    assert server.poll() is None, server.communicate()


def peer_seen_over_http(host: str, port: int) -> str:
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        connection.request("GET", "/cgi-bin/peer")
        response = connection.getresponse()
        assert response.status == 200
        return unmapped(response.read().decode())
    finally:
        connection.close()


def peer_seen_from(netns_path: Path, host: str, port: int) -> str:
    # No -T: Debian's busybox-static 1.35 wget dies of SIGSEGV with a timeout set.
    done = in_netns(netns_path, BUSYBOX, "wget", "-q", "-O-", f"http://{host}:{port}/cgi-bin/peer")
    assert done.returncode == 0, done.stderr
    return unmapped(done.stdout)


def unmapped(address: str) -> str:
    """httpd listens dual-stack: an IPv4 peer comes as ``[::ffff:a.b.c.d]``."""
    return address.strip().removeprefix("[::ffff:").removesuffix("]")


@dataclass(frozen=True)
class Client:
    """Another host: a namespace routed through this one by its own veth pair."""

    netns: Path
    host_ip: str   # this host's address on the link: non-loopback, local
    ip: str


def make_client(names: Names, state_dir: Path) -> Client:
    path = state_dir / "client-netns"
    netns.create(path)
    host_ip, ip = (str(names.link.network_address + 1), str(names.link.network_address + 2))
    fd = os.open(path, os.O_RDONLY)
    try:
        with IPRoute() as ipr:
            ipr.link("add", ifname=names.client_veth, kind="veth",
                     peer={"ifname": "eth0", "net_ns_fd": fd})
            index = ipr.link_lookup(ifname=names.client_veth)[0]
            ipr.addr("add", index=index, address=host_ip, prefixlen=names.link.prefixlen)
            ipr.link("set", index=index, state="up")
    finally:
        os.close(fd)
    with IPRoute(netns=str(path), flags=0) as ns:
        index = ns.link_lookup(ifname="eth0")[0]
        ns.addr("add", index=index, address=ip, prefixlen=names.link.prefixlen)
        ns.link("set", index=index, state="up")
        ns.route("add", dst="0.0.0.0/0", gateway=host_ip)
    return Client(path, host_ip, ip)


def make_www(directory: Path) -> Path:
    cgi = directory / "cgi-bin" / "peer"
    cgi.parent.mkdir(parents=True)
    cgi.write_text(PEER_CGI)
    cgi.chmod(0o755)
    return directory


def mappings(*texts: str) -> list[PortMapping]:
    return [PortMapping.model_validate(text) for text in texts]


def start_proxy(attachment: Attachment, sockets: tuple[socket.socket, ...],
                ports: tuple[PublishedPort, ...]) -> Proxy:
    proxy = Proxy(str(attachment.ip), [(sock, port.container_port)
                                       for sock, port in zip(sockets, ports, strict=True)])
    proxy.start()
    return proxy


# --- kernel state, read without the code under test -----------------------------------------

def host_link(name: str) -> dict[str, Any] | None:
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            return None
        link = ipr.get_links(found[0])[0]
        return {"index": found[0], "master": link.get("master"), "up": bool(link.get("flags") & 1),
                "kind": link.get(("linkinfo", "kind"))}


def inside(path: Path) -> dict[str, Any]:
    with IPRoute(netns=str(path), flags=0) as ns:
        eth0 = ns.link_lookup(ifname="eth0")
        lo = ns.get_links(ns.link_lookup(ifname="lo")[0])[0]
        state: dict[str, Any] = {"lo_up": bool(lo.get("flags") & 1), "eth0": None}
        if eth0:
            link = ns.get_links(eth0[0])[0]
            state["eth0"] = {
                "up": bool(link.get("flags") & 1), "mac": link.get("address"),
                "addresses": sorted(f"{a.get('address')}/{a.get('prefixlen')}"
                                    for a in ns.get_addr(index=eth0[0], family=socket.AF_INET)),
                "gateways": [r.get("gateway") for r in ns.get_routes(family=socket.AF_INET)
                             if r.get("dst_len") == 0 and r.get("gateway")]}
        return state


def assert_attached(network: Network, attachment: Attachment) -> None:
    veth = host_link(attachment.host_veth)
    bridge = host_link(network.bridge)
    assert veth is not None
    assert bridge is not None
    assert (veth["kind"], veth["master"], veth["up"]) == ("veth", bridge["index"], True)
    assert inside(attachment.netns_path) == {"lo_up": True, "eth0": {
        "up": True, "mac": attachment.mac,
        "addresses": [f"{attachment.ip}/{network.subnet.prefixlen}"],
        "gateways": [str(network.subnet.network_address + 1)]}}


def assert_gone(network: Network, names: Names, attachment: Attachment) -> None:
    assert host_link(attachment.host_veth) is None
    assert not attachment.netns_path.exists()
    assert attachment.container_id not in network.ipam.allocations()
    assert network.attachments() == []
    assert rules_mentioning(f"pyprov:{attachment.container_id}") == []


# --- fixtures ----------------------------------------------------------------------------------

@pytest.fixture
def names() -> Names:
    return make_names()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "network"


@pytest.fixture
def network(names: Names, state_dir: Path) -> Iterator[Network]:
    try:
        yield Network(state_dir, names.bridge, str(names.subnet), names.prefix)
    finally:
        scrub(names, state_dir)


@pytest.fixture
def client(network: Network, names: Names, state_dir: Path) -> Client:
    return make_client(names, state_dir)  # scrubbed with the network


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    with spawner() as start:
        yield start


@pytest.fixture
def www(tmp_path: Path) -> Path:
    return make_www(tmp_path / "www")


# --- namespaces ---------------------------------------------------------------------------------

def test_netns_is_persistent_has_lo_up_and_is_removed(network: Network, state_dir: Path) -> None:
    path = state_dir / "netns" / "probe"
    netns.create(path)
    namespace = path.stat().st_ino
    assert netns.is_netns(path)
    assert namespace != Path("/proc/self/ns/net").stat().st_ino  # not ours: a new one
    assert inside(path) == {"lo_up": True, "eth0": None}
    netns.create(path)  # idempotent: the same namespace
    assert path.stat().st_ino == namespace
    assert not Path("/var/run/netns/probe").exists()
    netns.remove(path)
    assert not path.exists()
    netns.remove(path)  # twice is fine


# --- attach and detach ---------------------------------------------------------------------------

def test_attach_then_detach_leaves_nothing_behind(network: Network, names: Names) -> None:
    cid = names.container(0)
    attachment = network.attach(cid)
    assert attachment.ip in network.subnet
    assert attachment.gateway == network.subnet.network_address + 1
    assert attachment.mac == "02:42:" + ":".join(f"{b:02x}" for b in attachment.ip.packed)
    assert attachment.host_veth == f"vp{cid[:11]}"
    assert attachment.netns_path == network.state_dir / "netns" / cid
    assert_attached(network, attachment)
    assert network.attachments() == [attachment]
    assert Attachment.from_json(attachment.to_json()) == attachment

    network.detach(cid)
    assert_gone(network, names, attachment)
    network.detach(cid)  # twice is fine
    network.remove()
    assert host_link(names.bridge) is None
    assert rules_mentioning(names.prefix) == []


def test_attach_twice_returns_the_same_attachment_untouched(network: Network,
                                                            names: Names) -> None:
    first = network.attach(names.container(0))
    veth = host_link(first.host_veth)
    namespace = first.netns_path.stat().st_ino
    assert network.attach(names.container(0)) == first
    assert host_link(first.host_veth) == veth  # same interface, not a new one
    assert first.netns_path.stat().st_ino == namespace


def test_bridge_chains_and_masquerade_rule_made_once(network: Network, names: Names,
                                                     state_dir: Path) -> None:
    network.attach(names.container(0))
    again = Network(state_dir, names.bridge, str(names.subnet), names.prefix)
    again.ensure()  # another agent process: nothing added twice
    again.attach(names.container(1))
    bridge = host_link(names.bridge)
    assert bridge is not None
    assert (bridge["kind"], bridge["up"]) == ("bridge", True)
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"
    saved = iptables_save()
    assert (f"-A {names.prefix}-POSTROUTING -s {names.subnet} ! -o {names.bridge} "
            "-j MASQUERADE") in saved
    assert f"-A POSTROUTING -j {names.prefix}-POSTROUTING" in saved
    assert f"-A FORWARD -j {names.prefix}-FORWARD" in saved
    ours = rules_mentioning(names.prefix)
    assert len(ours) == len(set(ours)) == 8 + 3  # 4 jumps, 4 chain rules, 3 chains


def crash_after_netns(network: Network, cid: str) -> Attachment:
    """The state an attach killed between making the namespace and the veth leaves: an
    address, an incomplete record, a namespace, no veth."""
    network.ensure()
    ip = network.ipam.allocate(cid)
    planned = Attachment(container_id=cid, netns_path=network.store.netns_path(cid), ip=ip,
                         prefixlen=network.subnet.prefixlen, gateway=network.ipam.gateway,
                         mac=links.mac_for(ip), host_veth=links.host_veth_name(cid),
                         bridge=network.bridge)
    network.store.save(planned, complete=False)
    netns.create(planned.netns_path)
    return planned


def test_detach_cleans_up_after_a_crash_half_way(network: Network, names: Names) -> None:
    planned = crash_after_netns(network, names.container(0))
    assert network.attachments() == [planned]  # the runtime finds the leftover
    network.detach(planned.container_id)
    assert_gone(network, names, planned)


def test_attach_finishes_what_a_crash_left(network: Network, names: Names) -> None:
    planned = crash_after_netns(network, names.container(0))
    namespace = planned.netns_path.stat().st_ino
    assert network.attach(planned.container_id) == planned
    assert_attached(network, planned)
    assert planned.netns_path.stat().st_ino == namespace
    record = network.store.load(planned.container_id)
    assert record is not None
    assert record.complete


def test_attach_repairs_a_deleted_veth_in_the_same_namespace(network: Network,
                                                             names: Names) -> None:
    attachment = network.attach(names.container(0))
    namespace = attachment.netns_path.stat().st_ino
    with IPRoute() as ipr:
        ipr.link("del", index=ipr.link_lookup(ifname=attachment.host_veth)[0])
    assert network.attach(names.container(0)) == attachment
    assert_attached(network, attachment)
    assert attachment.netns_path.stat().st_ino == namespace  # a running container keeps it


def test_containers_get_distinct_addresses_and_see_each_other(network: Network, names: Names,
                                                              spawn: Spawn, www: Path) -> None:
    one, two = network.attach(names.container(0)), network.attach(names.container(1))
    assert one.ip != two.ip
    httpd(spawn, two.netns_path, 80, www)
    assert peer_seen_from(one.netns_path, str(two.ip), 80) == str(one.ip)


# --- published ports -------------------------------------------------------------------------

def test_published_port_by_dnat_for_this_host_and_others_and_by_the_proxy_on_loopback(
        network: Network, names: Names, client: Client, spawn: Spawn, www: Path) -> None:
    cid = names.container(0)
    with network.reserve(mappings("80")) as reservation:  # -p 80: a free host port
        (port,) = reservation.ports
        attachment = network.publish(cid, network.attach(cid), reservation.ports)
        assert attachment.ports == reservation.ports
        assert network.attachments() == [attachment]
        httpd(spawn, attachment.netns_path, 80, www)
        proxy = start_proxy(attachment, reservation.sockets, reservation.ports)
        try:
            # this host to its own non-loopback address: OUTPUT DNAT keeps the source
            assert peer_seen_over_http(client.host_ip, port.host_port) == client.host_ip
            # this host to 127.0.0.1: the proxy, which connects from the bridge's address
            assert peer_seen_over_http("127.0.0.1", port.host_port) == str(attachment.gateway)
            # another host, through this one: PREROUTING DNAT
            assert peer_seen_from(client.netns, client.host_ip, port.host_port) == client.ip
        finally:
            proxy.stop()
    assert len(rules_mentioning(f"pyprov:{cid}")) == 2  # the DNAT and the FORWARD accept
    network.detach(cid)
    assert_gone(network, names, attachment)


def test_egress_is_masqueraded(network: Network, names: Names, client: Client, spawn: Spawn,
                               www: Path) -> None:
    attachment = network.attach(names.container(0))
    httpd(spawn, client.netns, 80, www)
    assert peer_seen_from(attachment.netns_path, client.ip, 80) == client.host_ip


def test_udp_through_the_proxy_and_through_nat(network: Network, names: Names, client: Client,
                                               spawn: Spawn) -> None:
    cid = names.container(0)
    with network.reserve(mappings("5353/udp")) as reservation:
        (port,) = reservation.ports
        attachment = network.publish(cid, network.attach(cid), reservation.ports)
        server = spawn("nsenter", f"--net={attachment.netns_path}", sys.executable, "-c",
                       UDP_ECHO, "5353")
        assert server.stdout is not None
        assert server.stdout.readline() == "ready\n"
        proxy = start_proxy(attachment, reservation.sockets, reservation.ports)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(TIMEOUT)
                sock.sendto(b"ping", ("127.0.0.1", port.host_port))
                assert sock.recv(65535) == f"PING from {attachment.gateway}".encode()
            asked = in_netns(client.netns, sys.executable, "-c", UDP_ASK, client.host_ip,
                             str(port.host_port), str(TIMEOUT))
            assert (asked.returncode, asked.stdout) == (0, f"PING from {client.ip}\n"), \
                asked.stderr
        finally:
            proxy.stop()
    network.detach(cid)
    assert_gone(network, names, attachment)


def test_port_in_use_is_refused_before_anything_changes(network: Network, names: Names,
                                                        state_dir: Path) -> None:
    before = iptables_save()
    with socket.create_server((ANY, 0)) as taken:
        busy = taken.getsockname()[1]
        with pytest.raises(PortInUse) as caught:
            network.reserve(mappings("80", f"{busy}:81"))
    assert (caught.value.host_ip, caught.value.host_port, caught.value.protocol) == \
        (ANY, busy, "tcp")
    assert f"{ANY}:{busy}/tcp" in str(caught.value)
    assert host_link(names.bridge) is None
    assert network.attachments() == []
    assert not state_dir.exists()
    assert iptables_save().count(names.prefix) == before.count(names.prefix) == 0


def test_removing_one_containers_rules_keeps_the_others(network: Network, names: Names) -> None:
    one, two = names.container(0), names.container(1)
    with network.reserve(mappings("80", "81/udp")) as first, \
            network.reserve(mappings("80")) as second:
        network.publish(one, network.attach(one), first.ports)
        network.publish(two, network.attach(two), second.ports)
    kept = rules_mentioning(f"pyprov:{two}")
    assert len(rules_mentioning(f"pyprov:{one}")) == 4
    assert len(kept) == 2
    network.detach(one)
    assert rules_mentioning(f"pyprov:{one}") == []
    assert rules_mentioning(f"pyprov:{two}") == kept
    assert [a.container_id for a in network.attachments()] == [two]


def test_publish_again_replaces_the_containers_rules(network: Network, names: Names) -> None:
    cid = names.container(0)
    attachment = network.attach(cid)
    with network.reserve(mappings("80", "81")) as first:
        attachment = network.publish(cid, attachment, first.ports)
    with network.reserve(mappings("82")) as second:
        attachment = network.publish(cid, attachment, second.ports)
    (rule,) = [line for line in rules_mentioning(f"pyprov:{cid}") if "DNAT" in line]
    assert f"--dport {second.ports[0].host_port} " in rule
    assert rule.endswith(f"--to-destination {attachment.ip}:82")
    record = network.store.load(cid)
    assert record is not None
    assert record.attachment.ports == second.ports


# --- FORWARD policy DROP, in a private network namespace ----------------------------------------

def forward_drop_scenario(state: str) -> None:
    """Run by the test below under ``unshare --net``: this namespace's FORWARD policy is
    DROP (docker's), and published ports and egress must still work through pyprov's
    accepts, while an unpublished port of the same container stays unreachable."""
    state_dir = Path(state)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["iptables", "-w", "-P", "FORWARD", "DROP"], check=True)
    names = make_names()
    network = Network(state_dir / "network", names.bridge, str(names.subnet), names.prefix)
    cid = names.container(0)
    with spawner() as start:
        try:
            client = make_client(names, state_dir / "network")
            www = make_www(state_dir / "www")
            with network.reserve(mappings("80")) as reservation:
                attachment = network.publish(cid, network.attach(cid), reservation.ports)
            httpd(start, attachment.netns_path, 80, www)
            httpd(start, attachment.netns_path, 81, www)
            httpd(start, client.netns, 80, www)
            port = attachment.ports[0].host_port
            assert peer_seen_from(client.netns, client.host_ip, port) == client.ip
            assert peer_seen_from(attachment.netns_path, client.ip, 80) == client.host_ip
            # Port 81 listens too but is not published: the DROP policy must swallow it.
            blocked = in_netns(client.netns, sys.executable, "-c", CONNECT,
                               str(attachment.ip), "81", "3")
            assert blocked.stdout == "timeout\n", blocked.stderr
        finally:
            scrub(names, state_dir)
    print("ok")


def test_forward_policy_drop(tmp_path: Path) -> None:
    done = subprocess.run(["unshare", "--net", sys.executable, "-c",
                           "import sys; from tests.integration.test_container_network import "
                           "forward_drop_scenario as s; s(sys.argv[1])", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT * 6,
                          check=False)
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr
    assert not [path for path in tmp_path.rglob("*") if path.is_file()
                and path.stat().st_dev == Path("/proc/self/ns/net").stat().st_dev]


def test_other_addresses_of_this_host_are_refused_as_subnets(tmp_path: Path) -> None:
    with IPRoute() as ipr:
        ours = next(a for a in ipr.get_addr(family=socket.AF_INET)
                    if not IPv4Address(a.get("address")).is_loopback)
    subnet = ip_network(f"{ours.get('address')}/{ours.get('prefixlen')}", strict=False)
    names = make_names()
    network = Network(tmp_path, names.bridge, str(subnet), names.prefix)
    try:
        with pytest.raises(InvalidNetworkConfig, match="overlaps"):
            network.attach(names.container(0))
        assert host_link(names.bridge) is None
    finally:
        scrub(names, tmp_path)
