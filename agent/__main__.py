"""``python -m agent``: the agent CLI, as the controller's transports run it."""

from agent.cli import main

raise SystemExit(main())
