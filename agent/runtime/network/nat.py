"""pyprov's kernel NAT and filter rules, in chains of its own, docker's layout:

    nat     PREROUTING  -m addrtype --dst-type LOCAL -j PYPROV             other hosts
            OUTPUT      ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j PYPROV  this host
            POSTROUTING -j PYPROV-POSTROUTING
    PYPROV              -i BRIDGE -j RETURN      containers reach published ports via the proxy
                        ... DNAT per published port, tagged with its container's id
    PYPROV-POSTROUTING  -s SUBNET ! -o BRIDGE -j MASQUERADE                egress
    filter  FORWARD     -j PYPROV-FORWARD (first)
    PYPROV-FORWARD      -o BRIDGE -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
                        -i BRIDGE -j ACCEPT      egress and container to container
                        ... ACCEPT per published port, tagged

The FORWARD accepts are installed whatever the policy: docker (or an operator) may set it
to DROP after pyprov started, and with ACCEPT they change nothing. Loopback is not
DNATed (the kernel will not route 127/8 out of the host): the user-space proxy, holding
the published port's socket, serves it. Each per-port rule carries the comment
``pyprov:<container id>``, so a container's rules are removed exactly, by that tag.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address

from agent.runtime.network.errors import InvalidNetworkConfig
from agent.runtime.network.iptables import Iptables, ListedRule, Rule, render
from agent.runtime.network.records import PublishedPort

BUILTIN = {"nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
           "filter": ("INPUT", "FORWARD", "OUTPUT")}
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,15}\Z")  # + "-POSTROUTING": 28, xtables' limit


def check_prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise InvalidNetworkConfig(f"chain prefix {prefix!r}: 1-16 letters, digits, _ or -, "
                                   "starting with a letter")
    return prefix


def tag(container_id: str) -> str:
    return f"pyprov:{container_id}"


def tagged(rule: ListedRule, container_id: str) -> bool:
    spec = rule.spec
    return any(word == "--comment" and spec[i + 1:i + 2] == (tag(container_id),)
               for i, word in enumerate(spec))


@dataclass(frozen=True)
class _Base:
    table: str
    chain: str
    spec: Rule


class Firewall:
    def __init__(self, prefix: str, bridge: str, subnet: IPv4Network,
                 iptables: Iptables | None = None) -> None:
        self.nat_chain = check_prefix(prefix)
        self.postrouting_chain = f"{prefix}-POSTROUTING"
        self.forward_chain = f"{prefix}-FORWARD"
        self.bridge, self.subnet = bridge, subnet
        self._iptables = iptables

    @property
    def iptables(self) -> Iptables:
        if self._iptables is None:
            self._iptables = Iptables.detect()
        return self._iptables

    def chains(self) -> dict[str, tuple[str, ...]]:
        return {"nat": (self.nat_chain, self.postrouting_chain), "filter": (self.forward_chain,)}

    def ensure(self) -> None:
        """Create the chains, the jumps to them and the bridge-wide rules that are missing."""
        for table, chains in self.chains().items():
            existing, _ = self.iptables.listing(table)
            for chain in chains:
                if chain not in existing:
                    self.iptables.run(table, "-N", chain)
        for rule in [*self._chain_rules(), *self._jumps()]:
            if not self.iptables.check(rule.table, rule.chain, rule.spec):
                self.iptables.run(rule.table, "-I", rule.chain, "1", *rule.spec)

    def publish(self, container_id: str, container_ip: IPv4Address,
                ports: Sequence[PublishedPort]) -> None:
        """Make ``container_id``'s port rules exactly ``ports``, one batch per table."""
        batches = self._removals(container_id)
        for port in ports:
            dnat = self._dnat(container_id, container_ip, port)
            if dnat is not None:
                batches["nat"].append(render("-A", self.nat_chain, dnat))
                batches["filter"].append(render("-A", self.forward_chain,
                                                self._accept(container_id, container_ip, port)))
        self.iptables.apply(batches)

    def unpublish(self, container_id: str) -> None:
        """Remove every rule tagged with ``container_id``; the others stay."""
        self.iptables.apply(self._removals(container_id))

    def rules_of(self, container_id: str) -> list[ListedRule]:
        found = []
        for table, chains in self.chains().items():
            _, rules = self.iptables.listing(table)
            found += [rule for rule in rules if rule.chain in chains and tagged(rule, container_id)]
        return found

    def remove(self) -> None:
        """Remove the jumps, rules and chains of this prefix (uninstall, tests)."""
        batches: dict[str, list[str]] = {}
        for table, chains in self.chains().items():
            existing, rules = self.iptables.listing(table)
            lines = [render("-D", rule.chain, rule.spec) for rule in rules
                     if rule.chain in BUILTIN[table] and _target(rule.spec) in chains]
            for chain in chains:
                if chain in existing:
                    lines += [f"-F {chain}", f"-X {chain}"]
            batches[table] = lines
        self.iptables.apply(batches)

    def _removals(self, container_id: str) -> dict[str, list[str]]:
        batches: dict[str, list[str]] = {}
        for table, chains in self.chains().items():
            _, rules = self.iptables.listing(table)
            batches[table] = [render("-D", rule.chain, rule.spec) for rule in rules
                              if rule.chain in chains and tagged(rule, container_id)]
        return batches

    def _jumps(self) -> list[_Base]:
        local = ("-m", "addrtype", "--dst-type", "LOCAL")
        return [_Base("nat", "PREROUTING", (*local, "-j", self.nat_chain)),
                _Base("nat", "OUTPUT", ("!", "-d", "127.0.0.0/8", *local, "-j", self.nat_chain)),
                _Base("nat", "POSTROUTING", ("-j", self.postrouting_chain)),
                _Base("filter", "FORWARD", ("-j", self.forward_chain))]

    def _chain_rules(self) -> list[_Base]:
        bridge = self.bridge
        return [_Base("nat", self.nat_chain, ("-i", bridge, "-j", "RETURN")),
                _Base("nat", self.postrouting_chain,
                      ("-s", str(self.subnet), "!", "-o", bridge, "-j", "MASQUERADE")),
                _Base("filter", self.forward_chain, ("-i", bridge, "-j", "ACCEPT")),
                _Base("filter", self.forward_chain,
                      ("-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED",
                       "-j", "ACCEPT"))]

    def _dnat(self, container_id: str, container_ip: IPv4Address,
              port: PublishedPort) -> Rule | None:
        """The DNAT rule for ``port``, or None where NAT cannot help: an IPv6 or loopback
        host address is served by the proxy alone."""
        host = ip_address(port.host_ip)
        if host.version != 4 or host.is_loopback:
            return None
        destination = () if host.is_unspecified else ("-d", f"{host}/32")
        return (*destination, "!", "-i", self.bridge, "-p", port.protocol, "-m", port.protocol,
                "--dport", str(port.host_port), "-m", "comment", "--comment", tag(container_id),
                "-j", "DNAT", "--to-destination", f"{container_ip}:{port.container_port}")

    def _accept(self, container_id: str, container_ip: IPv4Address,
                port: PublishedPort) -> Rule:
        return ("-d", f"{container_ip}/32", "!", "-i", self.bridge, "-o", self.bridge,
                "-p", port.protocol, "-m", port.protocol, "--dport", str(port.container_port),
                "-m", "comment", "--comment", tag(container_id), "-j", "ACCEPT")


def _target(spec: Rule) -> str | None:
    for i, word in enumerate(spec[:-1]):
        if word in ("-j", "-g"):
            return spec[i + 1]
    return None
