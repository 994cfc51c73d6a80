"""``python -m agent``: the agent CLI, as the controller's transports run it."""

import os

# The agent uses no pydantic plugins: skip the scan of every installed distribution's
# entry points that pydantic makes when the first model is built (start-up cost).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import sys

from agent.containers.cli import COMMANDS as CONTAINER_COMMANDS
from agent.images.cli import COMMANDS as IMAGE_COMMANDS

if sys.argv[1:2] and sys.argv[1] in CONTAINER_COMMANDS:
    from agent.containers.cli import main as containers_main
    from agent.process import leave_for_callers_directory

    leave_for_callers_directory()
    raise SystemExit(containers_main(sys.argv[1:]))

if sys.argv[1:2] == ["inspect"]:
    from agent.containers.cli import inspect_main

    answered = inspect_main(sys.argv[1:])
    if answered is not None:
        raise SystemExit(answered)

if sys.argv[1:2] and sys.argv[1] in IMAGE_COMMANDS:
    from agent.images.cli import main as images_main
    from agent.process import leave_for_callers_directory

    leave_for_callers_directory()
    raise SystemExit(images_main(sys.argv[1:]))

from agent.cli import main  # after the environment it depends on

raise SystemExit(main())
