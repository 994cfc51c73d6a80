"""The test fleet: simulated hosts (own netns, mount ns and sshd each) on this machine.

Library: :class:`Fleet` (``Fleet.create(hosts=3)``, always ``destroy()``); pytest:
``pytest_plugins = ["tests.fleet.fixtures"]`` gives the ``fleet`` fixture; script:
``python -m tests.fleet up --hosts N --dir DIR`` / ``down --dir DIR``.
"""

from tests.fleet.fleet import (
    DEFAULT_HOSTS,
    Fleet,
    FleetError,
    Host,
    HostDirs,
    check_prerequisites,
    known_hosts_name,
    reap_stale_fleets,
)

__all__ = [
    "DEFAULT_HOSTS",
    "Fleet",
    "FleetError",
    "Host",
    "HostDirs",
    "check_prerequisites",
    "known_hosts_name",
    "reap_stale_fleets",
]
