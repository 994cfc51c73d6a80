"""Host ranges (``web[01:10]``, ``db-[a:c]``, ``[1:10:2]``) and the ``host:port`` shorthand.

Written from Ansible's documented inventory syntax and checked against
``ansible-inventory``; the quirks kept on purpose, because operators' inventories
rely on them:

- a range is ``[begin:end]`` or ``[begin:end:step]``, inclusive; an empty begin is 0;
  a begin with a leading zero pads every number to its width (and the end must be
  written with the same width); letters range over ``a..zA..Z`` in that order;
- ``begin > end`` for numbers gives no hosts at all (Ansible's ``range()``), for
  letters it is an error;
- several ranges in one name multiply, the first range varying slowest;
- ``:NN`` after a name, an IPv4 address or a bracketed IPv6 address (``[::1]:22``)
  is a port, but only when what precedes it is a valid host identifier: otherwise
  the whole text is the name (``my_host_:22`` is one odd name, as in Ansible).
"""

from __future__ import annotations

import ipaddress
import re
import string

from controller.inventory.errors import InventoryError

# A pattern that expands to more hosts than this is a typo, not a fleet.
MAX_HOSTS_PER_PATTERN = 100_000

_ALNUM_RANGE = r"\[(?:[a-zA-Z]:[a-zA-Z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_HEX_RANGE = re.compile(r"\[[0-9a-fA-F]+:[0-9a-fA-F]+(?::[0-9]+)?\]")
# A DNS-like label that may hold ranges; it may not end with '-' or '_'.
_LABEL = rf"(?:\w|{_ALNUM_RANGE})(?:[\w-]|{_ALNUM_RANGE})*(?<![_-])"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_BRACKETED_PORT = re.compile(r"\[(.+)\]:([0-9]+)")
_TRAILING_PORT = re.compile(r"((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)")


def valid_address(address: str) -> bool:
    """A hostname or IPv4 address (ranges allowed), or an IPv6 address (hex ranges allowed)."""
    if _HOSTNAME.fullmatch(address):  # IPv4 addresses are hostnames of digit labels
        return True
    if "%" in address:  # scoped IPv6 addresses are not host identifiers for Ansible
        return False
    try:
        ipaddress.IPv6Address(_HEX_RANGE.sub("0", address))
    except ValueError:
        return False
    return True


def split_port(pattern: str) -> tuple[str, int | None]:
    """``host:port`` -> (host, port); (pattern, None) when there is no usable port."""
    address, port = pattern, None
    # Both forms are tried in turn, as Ansible does: '[a]:1' then the inside again.
    for form in (_BRACKETED_PORT, _TRAILING_PORT):
        found = form.fullmatch(address)
        if found:
            address, port = found[1], int(found[2])
    if port is None or not valid_address(address):
        return pattern, None
    return address, port


def _range_values(body: str) -> tuple[list[str], int]:
    """The values of one ``begin:end[:step]`` body, and the zero-padding width (0: none)."""
    bounds = body.split(":")
    if len(bounds) not in (2, 3):
        raise InventoryError(f"host range [{body}] must be begin:end or begin:end:step")
    begin, end = bounds[0] or "0", bounds[1]
    step = bounds[2] if len(bounds) == 3 else "1"
    if not end:
        raise InventoryError(f"host range [{body}] must specify an end value")
    width = 0
    if begin[0] == "0" and len(begin) > 1:
        width = len(begin)
        if len(end) != width:
            raise InventoryError(f"host range [{body}] must write begin and end with the "
                                 "same number of digits")
    letters = string.ascii_letters
    try:
        first, last = letters.index(begin), letters.index(end)
    except ValueError:
        first = last = -1
    try:
        if first >= 0:
            if first > last:
                raise InventoryError(f"host range [{body}] must have begin <= end")
            return list(letters[first:last + 1:int(step)]), width
        return [str(n) for n in range(int(begin), int(end) + 1, int(step))], width
    except ValueError:
        raise InventoryError(f"host range [{body}] is not a range of numbers or letters "
                             "with a non-zero step") from None


def expand_range(pattern: str) -> list[str]:
    """Every name a pattern stands for: itself when it has no '['."""
    if "[" not in pattern:
        return [pattern]
    # The first '[' and the first ']' delimit the range, wherever they are.
    parts = pattern.replace("[", "|", 1).replace("]", "|", 1).split("|")
    if len(parts) != 3:
        raise InventoryError(f"invalid host range in {pattern!r}: expected one [begin:end]")
    head, body, tail = parts
    values, width = _range_values(body)
    names: list[str] = []
    for value in values:
        name = f"{head}{value.zfill(width) if width else value}{tail}"
        names.extend(expand_range(name))
        if len(names) > MAX_HOSTS_PER_PATTERN:
            raise InventoryError(f"host pattern {pattern!r} expands to more than "
                                 f"{MAX_HOSTS_PER_PATTERN} hosts")
    return names


def expand_host_pattern(pattern: str) -> tuple[list[str], int | None]:
    """An inventory host entry -> (host names, port or None)."""
    address, port = split_port(pattern)
    return expand_range(address), port
