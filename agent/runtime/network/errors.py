"""The container network's errors.

    NetworkError (PyprovError)
    ├── InvalidNetworkConfig  a bridge name, subnet, chain prefix or container id pyprov refuses
    ├── CorruptState          an IPAM or attachment file that is not what pyprov writes
    ├── AddressExhausted      (subnet) no address left to hand out
    ├── NotAttached           (container_id) publish before attach
    ├── NetnsError            (path, reason) a network namespace could not be made or removed
    ├── LinkError             (operation, code) netlink refused (a bridge, veth, address, route)
    ├── FirewallUnavailable   neither an iptables (nf_tables or legacy) nor its -restore
    ├── FirewallError         (command, code, stderr) iptables refused a change
    └── PortUnavailable       (host_ip, host_port, protocol, reason) a host port cannot be held
        └── PortInUse         ... because something else holds it
"""

from __future__ import annotations

from ipaddress import IPv4Network

from agent.errors import PyprovError


class NetworkError(PyprovError):
    """Root of the container network's errors."""


class InvalidNetworkConfig(NetworkError):
    pass


class CorruptState(NetworkError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path} is not a pyprov network state file: {reason}")
        self.path, self.reason = path, reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.path, self.reason)


class AddressExhausted(NetworkError):
    def __init__(self, subnet: IPv4Network | str) -> None:
        super().__init__(f"no free address left in {subnet}")
        self.subnet = str(subnet)

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return type(self), (self.subnet,)


class NotAttached(NetworkError):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"container {container_id} is not attached to the network")
        self.container_id = container_id

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return type(self), (self.container_id,)


class NetnsError(NetworkError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"network namespace {path}: {reason}")
        self.path, self.reason = path, reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.path, self.reason)


class LinkError(NetworkError):
    """``code`` is the errno netlink answered."""

    def __init__(self, operation: str, code: int, detail: str = "") -> None:
        super().__init__(f"{operation}: {detail or f'netlink error {code}'}")
        self.operation, self.code, self.detail = operation, code, detail

    def __reduce__(self) -> tuple[type, tuple[str, int, str]]:
        return type(self), (self.operation, self.code, self.detail)


class FirewallUnavailable(NetworkError):
    pass


class FirewallError(NetworkError):
    def __init__(self, command: str, code: int, stderr: str) -> None:
        super().__init__(f"{command} failed ({code}): {stderr.strip()}")
        self.command, self.code, self.stderr = command, code, stderr

    def __reduce__(self) -> tuple[type, tuple[str, int, str]]:
        return type(self), (self.command, self.code, self.stderr)


class PortUnavailable(NetworkError):
    """``end``: the last port of a host range none of whose ports was free."""

    def __init__(self, host_ip: str, host_port: int, protocol: str, reason: str,
                 end: int | None = None) -> None:
        ports = f"{host_port}-{end}" if end is not None and end != host_port else str(host_port)
        address = f"[{host_ip}]" if ":" in host_ip else host_ip
        super().__init__(f"cannot publish {address}:{ports}/{protocol}: {reason}")
        self.host_ip, self.host_port, self.protocol = host_ip, host_port, protocol
        self.reason, self.end = reason, end

    def __reduce__(self) -> tuple[type, tuple[str, int, str, str, int | None]]:
        return type(self), (self.host_ip, self.host_port, self.protocol, self.reason,
                            self.end)


class PortInUse(PortUnavailable):
    def __init__(self, host_ip: str, host_port: int, protocol: str,
                 reason: str = "the port is already in use", end: int | None = None) -> None:
        super().__init__(host_ip, host_port, protocol, reason, end)
