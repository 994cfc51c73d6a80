"""The docker-like host commands (images and containers): which module answers which
command, in one place for ``python -m agent`` and the resident agent's warm workers."""

from __future__ import annotations

IMAGE_COMMANDS = ("pull", "push", "tag", "images", "rmi", "inspect", "save", "load", "login",
                  "logout", "catalog")
CONTAINER_COMMANDS = ("run", "ps", "logs", "exec", "stop", "start", "restart", "rm", "port",
                      "top", "container-exited")
HOST_COMMANDS = IMAGE_COMMANDS + CONTAINER_COMMANDS


def run_host_command(argv: list[str]) -> int:
    """Run one host command (``argv[0]`` in HOST_COMMANDS) on this process's stdio."""
    if argv[0] in CONTAINER_COMMANDS:
        from agent.containers.cli import main as containers_main

        return containers_main(argv)
    if argv[0] == "inspect":
        from agent.containers.cli import inspect_main

        answered = inspect_main(argv)
        if answered is not None:
            return answered
    from agent.images.cli import main as images_main

    return images_main(argv)
