"""The contract's plain values, importable without pydantic (the image commands and the
relay-facing parts of the agent start faster without it)."""

PROTOCOL_VERSION = 1

# Where a host keeps its state, and the resident agent's socket in it: the controller
# reaches that socket over SSH (a direct-streamlocal channel) when an agent serves it.
DEFAULT_STATE_DIR = "/var/lib/pyprov"
AGENT_SOCKET = "agent.sock"
# Bootstrap writes its build id (a digest of the wheels) here in the agent's install dir;
# ``agent version`` reports it, and an agent of another build is an upgrade.
BUILD_FILE = ".pyprov-build"

# Puppet's detailed exit codes: 0 nothing to do, 2 changes (or drift in check mode),
# 4 failures, 6 both.
EXIT_OK = 0
EXIT_CHANGED = 2
EXIT_FAILED = 4


def exit_code(changed: bool, failed: bool) -> int:
    """Puppet's detailed exit code for a run."""
    return (EXIT_CHANGED if changed else EXIT_OK) | (EXIT_FAILED if failed else EXIT_OK)
