"""``pyprov``: the operator's command.

    pyprov apply [-i INVENTORY] PATH...     converge hosts: a playbook, or manifests
                                            (files or directories) as one play on all hosts
    pyprov check [-i INVENTORY] PATH...     the same plan, nothing changed (= apply --check)
    pyprov validate [-i INVENTORY] PATH...  render and validate for every host, contact none
    pyprov render [-i INVENTORY] PATH...    print the desired state each host's agent receives
    pyprov inventory -i INVENTORY --list    the resolved inventory, as ansible-inventory --list
    pyprov bootstrap -i INVENTORY           install or upgrade the agent on the hosts
    pyprov drift [-i INVENTORY] [--now]     every host's latest drift report, one table
    pyprov agent ...                        the host-side agent (pyprov agent --help)
    pyprov pull|push|tag|images|rmi|inspect|save|load|login|logout|catalog ...
                                            this host's images and registries, docker-like
                                            (the agent's commands: pyprov agent pull ...)

Without an inventory the target is localhost, through the local transport.
Exit codes (Puppet's detailed codes): 0 nothing to change, 2 changes made (check:
drift found), 4 failures or unreachable hosts, 6 changes and failures.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from agent.model.constants import EXIT_FAILED
from controller.errors import ControllerError
from controller.manifests.errors import ManifestError

DEFAULT_FORKS = 20
# Commands about this host's own images and containers: the agent's, run as `pyprov X`.
HOST_COMMANDS = ("pull", "push", "tag", "images", "rmi", "inspect", "save", "load", "login",
                 "logout", "catalog", "run", "ps", "logs", "exec", "stop", "start", "restart",
                 "rm", "port", "top")


def _add_inventory(command: argparse.ArgumentParser) -> None:
    command.add_argument("-i", "--inventory", type=Path,
                         help="Ansible inventory (INI or YAML file, or a directory); "
                         "default: localhost only")
    command.add_argument("-l", "--limit", help="further limit the hosts (Ansible pattern)")


def _add_connection(command: argparse.ArgumentParser) -> None:
    command.add_argument("-f", "--forks", type=int, default=DEFAULT_FORKS,
                         help=f"hosts worked on at once (default {DEFAULT_FORKS})")
    command.add_argument("--ssh-accept-new", action="store_true",
                         help="trust and record unknown host keys (a changed key is "
                         "always refused)")
    command.add_argument("--known-hosts", type=Path,
                         help="known_hosts file (default ~/.ssh/known_hosts)")
    command.add_argument("--ssh-config", type=Path, help="ssh config (default ~/.ssh/config)")


def _add_run_options(command: argparse.ArgumentParser, can_check: bool) -> None:
    command.add_argument("paths", nargs="+", metavar="PATH")
    if can_check:
        command.add_argument("--check", action="store_true", help="plan only")
    command.add_argument("--diff", action="store_true", help="show unified diffs")
    command.add_argument("--force", action="store_true",
                         help="replace files pyprov cannot parse (a backup is kept)")
    command.add_argument("--output", choices=("text", "json"), default="text")
    command.add_argument("--state-dir", help="agent state dir (default $PYPROV_STATE_DIR "
                         "or /var/lib/pyprov)")
    command.add_argument("--lock-timeout", type=float,
                         help="seconds to wait for another pass on a host (default 300)")
    command.add_argument("-v", "--verbose", action="count", default=0)
    command.add_argument("--log-format", choices=("auto", "console", "json"), default="auto",
                         help="agent logs on stderr (auto: console on a terminal, JSON lines "
                         "otherwise)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyprov", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("apply", "converge hosts to the manifests"),
                            ("check", "report drift, change nothing")):
        command = sub.add_parser(name, help=help_text)
        _add_inventory(command)
        _add_connection(command)
        _add_run_options(command, can_check=name == "apply")
    for name, help_text in (("validate", "render and validate manifests for every host"),
                            ("render", "print the desired state sent to each host")):
        command = sub.add_parser(name, help=help_text)
        _add_inventory(command)
        command.add_argument("paths", nargs="+", metavar="PATH")
    inventory = sub.add_parser("inventory", help="show the resolved inventory")
    _add_inventory(inventory)
    inventory.add_argument("--list", action="store_true", required=True,
                           help="all hosts and variables, as ansible-inventory --list")
    bootstrap = sub.add_parser("bootstrap", help="install or upgrade the agent on hosts")
    bootstrap.add_argument("playbook", nargs="?", type=Path,
                           help="plays whose hosts and vars (pyprov_install_dir, "
                           "ansible_python_interpreter) say where to install; default: all")
    _add_inventory(bootstrap)
    _add_connection(bootstrap)
    bootstrap.add_argument("--output", choices=("text", "json"), default="text")
    drift = sub.add_parser("drift", help="the fleet's drift: every host's latest report")
    _add_inventory(drift)
    _add_connection(drift)
    drift.add_argument("--now", action="store_true",
                       help="run the check on every host first (changes nothing)")
    drift.add_argument("--output", choices=("text", "json"), default="text")
    drift.add_argument("--state-dir", help="agent state dir (default $PYPROV_STATE_DIR "
                       "or /var/lib/pyprov)")
    sub.add_parser("agent", help="run the host agent (pyprov agent --help)", add_help=False)
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    from controller import commands  # lazily: `pyprov agent` must not pay for these imports

    if args.command == "inventory":
        print(commands.inventory_list(args.inventory))
    elif args.command == "validate":
        hosts, count = commands.validate(args.inventory, args.limit, args.paths)
        print(f"{count} documents valid for {hosts} hosts")
    elif args.command == "render":
        print(commands.render(args.inventory, args.limit, args.paths))
    elif args.command == "bootstrap":
        return commands.bootstrap(args)
    elif args.command == "drift":
        return commands.drift(args)
    else:
        return commands.apply(args)
    return 0


def host_command(argv: list[str]) -> list[str]:
    """``pyprov CMD`` as the agent names it: ``agent run`` is the agent's loop, docker's
    run is ``agent container run``."""
    return ["container", *argv] if argv[0] == "run" else argv


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and (argv[0] == "agent" or argv[0] in HOST_COMMANDS):
        # The agent is its own program: the controller never imports its code. It returns
        # to the operator's directory (PYPROV_CWD) for relative paths (save -o, load -i).
        agent_args = argv[1:] if argv[0] == "agent" else host_command(argv)
        os.environ["PYPROV_CWD"] = str(Path.cwd())
        os.chdir("/")  # with -I: never run an `agent` package from the current directory
        os.execv(sys.executable, [sys.executable, "-I", "-m", "agent", *agent_args])  # noqa: S606
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except ManifestError as exc:
        print(f"pyprov: invalid manifests, nothing was applied:\n{exc}", file=sys.stderr)
        return EXIT_FAILED
    except ControllerError as exc:
        print(f"pyprov: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # `pyprov ... | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
