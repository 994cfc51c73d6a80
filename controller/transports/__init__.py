"""How the controller reaches a host's agent: ``local`` (child processes) or ``ssh``."""

import sys

# paramiko imports invoke, ~55 ms of a run's start (it pulls in unittest.mock and asyncio),
# only to run ssh_config's `Match exec`. Blocked before paramiko is first imported (every
# module importing it is in this package); ssh_target.load_ssh_config imports it for real
# when a config uses `Match exec`.
sys.modules.setdefault("invoke", None)  # type: ignore[arg-type]
