"""``python -m agent``: the agent CLI, as the controller's transports run it."""

import os

# The agent uses no pydantic plugins: skip the scan of every installed distribution's
# entry points that pydantic makes when the first model is built (start-up cost).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import sys

from agent.hostcommands import host_command_argv

host_argv = host_command_argv(sys.argv[1:])
if host_argv is not None:
    from agent.fastclient import forward
    from agent.process import leave_for_callers_directory

    leave_for_callers_directory()
    served = forward(host_argv)  # a resident agent's warm worker, when one serves
    if served is not None:
        raise SystemExit(served)
    from agent.hostcommands import run_host_command

    raise SystemExit(run_host_command(host_argv))

from agent.cli import main  # noqa: E402 - after the environment it depends on

raise SystemExit(main())
