"""``python -m agent``: the agent CLI, as the controller's transports run it."""

import os

# The agent uses no pydantic plugins: skip the scan of every installed distribution's
# entry points that pydantic makes when the first model is built (start-up cost).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from agent.cli import main  # after the environment it depends on

raise SystemExit(main())
