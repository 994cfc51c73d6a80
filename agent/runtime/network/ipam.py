"""IPv4 addresses for containers on one subnet, shared by every agent process on the host.

State: ``<directory>/<network>-<prefixlen>.json``, ``{"subnet", "last", "allocations":
{owner: address}}``, replaced atomically on every change. Writers serialize on an flock
of the sibling ``.lock`` file: the JSON file itself is replaced by rename, so a lock on it
would be a lock on an inode nobody reads any more.

The first host address is the gateway (the bridge's). Addresses are handed out in order
after the last one given, wrapping around (docker's allocator does the same), so a
released address is not reused at once while conntrack may still hold flows for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from agent.fsutil.atomic import atomic_write, make_dirs
from agent.runtime.network.errors import AddressExhausted, CorruptState, InvalidNetworkConfig

MAX_PREFIXLEN = 30  # a /31 or /32 has no room for a gateway and a container


def parse_subnet(text: str) -> IPv4Network:
    try:
        subnet = IPv4Network(text, strict=True)
    except ValueError as error:
        raise InvalidNetworkConfig(f"subnet {text!r}: {error}") from None
    if subnet.prefixlen > MAX_PREFIXLEN:
        raise InvalidNetworkConfig(f"subnet {text}: a container subnet needs at most "
                                   f"/{MAX_PREFIXLEN}")
    return subnet


class Ipam:
    def __init__(self, directory: Path, subnet: IPv4Network) -> None:
        self.subnet = subnet
        self.gateway = subnet.network_address + 1
        name = f"{subnet.network_address}-{subnet.prefixlen}"
        self.path = directory / f"{name}.json"
        self._lock_path = directory / f"{name}.lock"

    def allocate(self, owner: str, prefer: IPv4Address | None = None) -> IPv4Address:
        """``owner``'s address: the one it already has, else ``prefer`` if free (a record
        that outlived the allocator's file keeps its address), else the next free one."""
        with self._locked():
            state = self._read()
            allocations: dict[str, str] = state["allocations"]
            if owner in allocations:
                return IPv4Address(allocations[owner])
            taken = {int(IPv4Address(address)) for address in allocations.values()}
            if prefer is not None and self._usable(int(prefer)) and int(prefer) not in taken:
                chosen = int(prefer)
            else:
                chosen = self._next_free(int(IPv4Address(state["last"])), taken)
            allocations[owner] = str(IPv4Address(chosen))
            state["last"] = allocations[owner]
            self._write(state)
            return IPv4Address(chosen)

    def release(self, owner: str) -> None:
        """Give ``owner``'s address back; nothing happens if it has none."""
        with self._locked():
            state = self._read()
            if state["allocations"].pop(owner, None) is not None:
                self._write(state)

    def allocations(self) -> dict[str, IPv4Address]:
        with self._locked():
            return {owner: IPv4Address(address)
                    for owner, address in self._read()["allocations"].items()}

    def _usable(self, address: int) -> bool:
        first, last = int(self.gateway) + 1, int(self.subnet.broadcast_address) - 1
        return first <= address <= last

    def _next_free(self, last: int, taken: set[int]) -> int:
        first, final = int(self.gateway) + 1, int(self.subnet.broadcast_address) - 1
        size = final - first + 1
        start = last + 1 if first <= last + 1 <= final else first
        for step in range(size):
            candidate = first + (start - first + step) % size
            if candidate not in taken:
                return candidate
        raise AddressExhausted(self.subnet)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        make_dirs(self.path.parent, 0o700)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self) -> dict[str, Any]:
        try:
            state = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {"subnet": str(self.subnet), "last": str(self.gateway), "allocations": {}}
        except ValueError as error:
            raise CorruptState(str(self.path), str(error)) from None
        if (not isinstance(state, dict) or state.get("subnet") != str(self.subnet)
                or not isinstance(state.get("allocations"), dict)
                or not isinstance(state.get("last"), str)):
            raise CorruptState(str(self.path), f"not an allocation table for {self.subnet}")
        return state

    def _write(self, state: dict[str, Any]) -> None:
        data = json.dumps(state, indent=1, sort_keys=True) + "\n"
        atomic_write(self.path, data.encode(), mode=0o600, dir_mode=0o700)
