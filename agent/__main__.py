"""``python -m agent``: the agent CLI, as the controller's transports run it."""

import os

# The agent uses no pydantic plugins: skip the scan of every installed distribution's
# entry points that pydantic makes when the first model is built (start-up cost).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import sys

from agent.hostcommands import HOST_COMMANDS

if sys.argv[1:2] and sys.argv[1] in HOST_COMMANDS:
    from agent.fastclient import forward
    from agent.process import leave_for_callers_directory

    leave_for_callers_directory()
    served = forward(sys.argv[1:])  # a resident agent's warm worker, when one serves
    if served is not None:
        raise SystemExit(served)
    from agent.hostcommands import run_host_command

    raise SystemExit(run_host_command(sys.argv[1:]))

from agent.cli import main  # after the environment it depends on

raise SystemExit(main())
