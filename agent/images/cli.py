"""docker-like image commands on a host: pull, push, tag, images, rmi, inspect, save,
load, login, logout, catalog. Same store and registry configuration as the reconciler.

Output is docker's where operators read it (``images`` columns, ``pull`` status lines);
progress is drawn as bars on a terminal and printed as plain lines otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from agent.errors import PyprovError
from agent.hostcommands import IMAGE_COMMANDS
from agent.model.constants import EXIT_FAILED
from agent.model.syntax.errors import SyntaxProblem
from agent.registry.hosts import DAEMON_JSON
from agent.state import StateDir, resolve_state_dir


def register(sub: argparse._SubParsersAction[Any]) -> None:
    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        parser.add_argument("--state-dir", help="default $PYPROV_STATE_DIR or /var/lib/pyprov")
        parser.add_argument("--daemon-config", type=Path, default=DAEMON_JSON,
                            help="daemon.json whose mirrors and insecure registries apply")
        return parser

    pull = command("pull", "pull an image into the store")
    pull.add_argument("name")
    pull.add_argument("--platform", help="os/arch[/variant] (default: this host's)")
    pull.add_argument("-q", "--quiet", action="store_true")
    pull.add_argument("--no-unpack", action="store_true",
                      help="download only (a registry or mirror host never runs the image)")
    push = command("push", "push a stored image to its registry")
    push.add_argument("name")
    push.add_argument("-q", "--quiet", action="store_true")
    tag = command("tag", "give a stored image another name")
    tag.add_argument("source")
    tag.add_argument("target")
    images = command("images", "list stored images")
    images.add_argument("--digests", action="store_true", help="show digests")
    images.add_argument("--verify", action="store_true",
                        help="re-hash every blob and unpacked layer; exit 4 on any damage")
    rmi = command("rmi", "remove image names; unreferenced data is collected")
    rmi.add_argument("-f", "--force", action="store_true",
                     help="untag even if a container uses it (its data stays until then)")
    rmi.add_argument("names", nargs="+")
    inspect = command("inspect", "an image's manifest and config as JSON")
    inspect.add_argument("name")
    save = command("save", "write images to a docker-save (or OCI) archive")
    save.add_argument("-o", "--output", type=Path, required=True)
    save.add_argument("--format", choices=("docker", "oci"), default="docker")
    save.add_argument("names", nargs="+")
    load = command("load", "load a docker-save or OCI archive into the store")
    load.add_argument("-i", "--input", type=Path, required=True)
    login = command("login", "store credentials for a registry (docker's config.json)")
    login.add_argument("registry")
    login.add_argument("-u", "--username")
    login.add_argument("-p", "--password", help="prefer --password-stdin")
    login.add_argument("--password-stdin", action="store_true")
    logout = command("logout", "forget a registry's credentials")
    logout.add_argument("registry")
    catalog = command("catalog", "a registry's repositories (/v2/_catalog) and their tags")
    catalog.add_argument("registry")
    catalog.add_argument("--tags", action="store_true", help="list each repository's tags")


COMMANDS = IMAGE_COMMANDS


def main(argv: list[str]) -> int:
    """``pyprov pull ...`` straight from ``python -m agent``: without the reconciler's
    imports (pydantic and the manifest models), ~100 ms sooner."""
    parser = argparse.ArgumentParser(prog="pyprov")
    register(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv), sys.stdin, sys.stdout)


def run(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """One image command; errors are one line on stderr and exit code 4."""
    from agent.images import commands

    state = StateDir(resolve_state_dir(args.state_dir))
    try:
        return commands.dispatch(args, state, stdin, stdout)
    except (PyprovError, SyntaxProblem, OSError) as exc:
        print(f"pyprov {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
