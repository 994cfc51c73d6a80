"""Sizes and CPU counts as compose writes them: ``mem_limit: 512m``, ``cpus: 1.5``.

Memory sizes follow docker's RAMInBytes: binary units (``k`` = 1024), an optional
trailing ``b`` (``512mb``), case-insensitive, a plain integer meaning bytes.
"""

from __future__ import annotations

import re

from agent.model.syntax.errors import SyntaxProblem

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)b?\Z", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
MIN_MEMORY = 6 << 20  # docker refuses less than 6 MiB: the container would not start
MAX_PIDS = 4_194_304  # the kernel's pid_max ceiling


def parse_memory(value: object) -> int:
    """Bytes from ``512m``, ``1.5g``, ``1073741824``."""
    if isinstance(value, bool):
        raise SyntaxProblem("a memory size must be a number of bytes or e.g. \"512m\"")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE.match(value.strip())):
        size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    else:
        raise SyntaxProblem(f"memory size {value!r} is not a size such as \"512m\" or \"1g\"")
    if size < MIN_MEMORY:
        raise SyntaxProblem(f"memory limit {value!r} is below the 6 MiB minimum docker allows")
    return size


def parse_cpus(value: object) -> float:
    """``cpus: 1.5``: at most the CPUs this machine has, as docker checks."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SyntaxProblem("cpus must be a number such as 0.5 or 2")
    try:
        cpus = float(value)
    except ValueError:
        raise SyntaxProblem(f"cpus {value!r} is not a number such as 0.5 or 2") from None
    # The host's own CPU count is checked where the container runs, not in the manifest.
    if not 0.01 <= cpus <= 1024:  # also refuses NaN
        raise SyntaxProblem(f"cpus {value!r} must be between 0.01 and 1024")
    return cpus


def parse_pids(value: object) -> int:
    """``pids_limit``: a positive count (``-1`` or ``0`` mean unlimited, as in compose)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SyntaxProblem("pids_limit must be an integer")
    if value in (-1, 0):
        return 0
    if not 1 <= value <= MAX_PIDS:
        raise SyntaxProblem(f"pids_limit {value} must be between 1 and {MAX_PIDS}, or -1")
    return value
