"""The docker-like host commands (images and containers): which module answers which
command, in one place for ``python -m agent`` and the resident agent's warm workers.

``agent run`` is the agent's own loop, so docker's ``run`` is ``agent container run``
(docker's long form); ``pyprov run`` maps to it. ``agent container CMD`` works for every
container command."""

from __future__ import annotations

IMAGE_COMMANDS = ("pull", "push", "tag", "images", "rmi", "inspect", "save", "load", "login",
                  "logout", "catalog")
CONTAINER_COMMANDS = ("run", "ps", "logs", "exec", "stop", "start", "restart", "rm", "port",
                      "top", "container-exited")
HOST_COMMANDS = IMAGE_COMMANDS + CONTAINER_COMMANDS
AGENT_OWN = ("run",)  # agent commands that shadow a host command of the same name


def host_command_argv(argv: list[str]) -> list[str] | None:
    """The host command an agent command line asks for, if it is one."""
    if argv[:1] == ["container"] and argv[1:2] and argv[1] in CONTAINER_COMMANDS:
        return argv[1:]
    if argv[:1] and argv[0] in HOST_COMMANDS and argv[0] not in AGENT_OWN:
        return argv
    return None


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
