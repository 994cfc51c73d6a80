"""Parsing of the container commands; their bodies are in :mod:`agent.containers.commands`.

``inspect`` is shared with the image commands: a container by that name or id first,
else an image, as ``docker inspect`` does.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from agent.errors import PyprovError
from agent.hostcommands import CONTAINER_COMMANDS
from agent.model.constants import EXIT_FAILED
from agent.model.syntax.errors import SyntaxProblem
from agent.state import StateDir, resolve_state_dir

COMMANDS = CONTAINER_COMMANDS


def register(sub: argparse._SubParsersAction[Any]) -> None:
    def command(name: str, help_text: str | None) -> argparse.ArgumentParser:
        # -h is --hostname for run, as in docker: --help only, for every command alike.
        parser: argparse.ArgumentParser = (
            sub.add_parser(name, add_help=False, help=help_text) if help_text
            else sub.add_parser(name, add_help=False))
        parser.add_argument("--help", action="help", help="show this help and exit")
        parser.add_argument("--state-dir", help="default $PYPROV_STATE_DIR or /var/lib/pyprov")
        return parser

    _register_run(command("run", "create and start a container from a stored (or pulled) "
                          "image"))
    _register_others(command)


def _register_run(run: argparse.ArgumentParser) -> None:
    run.add_argument("-d", "--detach", action="store_true", help="print the id and return")
    run.add_argument("-i", "--interactive", action="store_true",
                     help="keep stdin open (the container reads the caller's stdin)")
    run.add_argument("-t", "--tty", action="store_true", help="a terminal for the container")
    run.add_argument("--name")
    run.add_argument("--rm", action="store_true", help="remove it when it exits")
    run.add_argument("-p", "--publish", action="append", default=[],
                     metavar="[IP:][HOST:]CONTAINER[/PROTO]")
    run.add_argument("-v", "--volume", action="append", default=[],
                     metavar="SOURCE:TARGET[:ro]")
    run.add_argument("-e", "--env", action="append", default=[], metavar="KEY[=VALUE]")
    run.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--restart", default="no")
    run.add_argument("--network", "--net", default="bridge", choices=("bridge", "host", "none"))
    run.add_argument("--entrypoint")
    run.add_argument("-w", "--workdir")
    run.add_argument("-u", "--user")
    run.add_argument("-h", "--hostname")
    run.add_argument("-m", "--memory")
    run.add_argument("--cpus")
    run.add_argument("--pids-limit", type=int)
    run.add_argument("--volumes-from", action="append", default=[])
    run.add_argument("image")
    run.add_argument("cmd", nargs=argparse.REMAINDER)


def _register_others(command: Any) -> None:
    ps = command("ps", "list containers (running ones; -a for all)")
    ps.add_argument("-a", "--all", action="store_true")
    ps.add_argument("-q", "--quiet", action="store_true", help="ids only")
    ps.add_argument("--no-trunc", action="store_true")
    logs = command("logs", "a container's output")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--tail", default="all", help="the last N lines (default all)")
    logs.add_argument("-t", "--timestamps", action="store_true")
    logs.add_argument("container")
    exec_ = command("exec", "run a command in a running container")
    exec_.add_argument("-i", "--interactive", action="store_true")
    exec_.add_argument("-t", "--tty", action="store_true")
    exec_.add_argument("-e", "--env", action="append", default=[])
    exec_.add_argument("-u", "--user")
    exec_.add_argument("-w", "--workdir")
    exec_.add_argument("container")
    exec_.add_argument("cmd", nargs=argparse.REMAINDER)
    for name, text in (("stop", "stop containers (stop signal, then SIGKILL)"),
                       ("restart", "stop then start containers")):
        parser = command(name, text)
        parser.add_argument("-t", "--time", type=float, default=None,
                            help="seconds before SIGKILL (default 10)")
        parser.add_argument("containers", nargs="+")
    start = command("start", "start stopped containers")
    start.add_argument("containers", nargs="+")
    rm = command("rm", "remove containers")
    rm.add_argument("-f", "--force", action="store_true", help="stop running ones first")
    rm.add_argument("-v", "--volumes", action="store_true", help="and their anonymous volumes")
    rm.add_argument("containers", nargs="+")
    port = command("port", "a container's published ports")
    port.add_argument("container")
    port.add_argument("private", nargs="?", metavar="PORT[/PROTO]")
    top = command("top", "a container's processes")
    top.add_argument("container")
    exited = command("container-exited", None)
    exited.add_argument("id")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pyprov")
    register(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv), sys.stdin, sys.stdout)


def inspect_main(argv: list[str]) -> int | None:
    """``pyprov inspect NAME``: the container's JSON if one has that name or id; None
    to let the image commands answer."""
    import json

    from agent.containers.commands import inspect_container
    from agent.runtime.engine import Runtime
    from agent.runtime.records import NoSuchContainer

    parser = argparse.ArgumentParser(prog="pyprov inspect")
    parser.add_argument("--state-dir")
    parser.add_argument("--daemon-config")
    parser.add_argument("name")
    args, _ = parser.parse_known_args(argv[1:])
    try:
        found = inspect_container(Runtime(StateDir(resolve_state_dir(args.state_dir))),
                                  args.name)
    except (NoSuchContainer, PyprovError, OSError):
        return None
    print(json.dumps([found], indent=2))
    return 0


def run(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """One container command; errors are one line on stderr and exit code 4 (``run``
    keeps docker's 125 for "the container could not be started")."""
    from agent.containers import commands

    state = StateDir(resolve_state_dir(args.state_dir))
    try:
        return commands.dispatch(args, state, stdin, stdout)
    except (PyprovError, SyntaxProblem, OSError, ValueError) as exc:
        print(f"pyprov {args.command}: {exc}", file=sys.stderr)
        return commands.EXIT_RUN_FAILED if args.command == "run" else EXIT_FAILED
