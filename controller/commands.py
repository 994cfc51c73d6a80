"""What each ``pyprov`` sub-command does, behind the argument parsing of cli.py."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from controller.errors import ControllerError
from controller.inventory import Inventory, load_inventory, to_ansible_list
from controller.playbooks.model import Play, is_playbook, load_playbook
from controller.plays import PlannedPlay, plan_plays
from controller.report.recap import Recap
from controller.report.render import JsonRenderer, Renderer, TextRenderer
from controller.runner import AgentFlags, desired_state_json, run_plays
from controller.targets import transport_factory
from controller.transports.ssh import SshOptions


def plays_from(paths: list[str]) -> list[Play]:
    """A playbook file, or manifest paths as one play on every host."""
    if len(paths) == 1 and is_playbook(Path(paths[0])):
        return load_playbook(Path(paths[0]))
    return [Play(name=" ".join(paths), hosts="all",
                 manifests=[str(Path(p).absolute()) for p in paths])]


def _plan(inventory_path: Path | None, limit: str | None,
          paths: list[str]) -> tuple[Inventory, list[PlannedPlay]]:
    inventory = load_inventory(inventory_path)
    planned = plan_plays(plays_from(paths), inventory, limit)
    if not any(play.hosts for play in planned):
        raise ControllerError(f"no hosts matched (limit: {limit or 'none'})")
    return inventory, planned


def ssh_options(args: argparse.Namespace) -> SshOptions:
    defaults = SshOptions()
    return SshOptions(known_hosts=args.known_hosts or defaults.known_hosts,
                      accept_new=args.ssh_accept_new, ssh_config=args.ssh_config)


def apply(args: argparse.Namespace) -> int:
    check = args.command == "check" or args.check
    inventory, planned = _plan(args.inventory, args.limit, args.paths)
    renderer: Renderer = (JsonRenderer() if args.output == "json"
                          else TextRenderer(show_diff=args.diff))
    state_dir = str(Path(args.state_dir).absolute()) if args.state_dir else None
    flags = AgentFlags(check=check, diff=args.diff, force=args.force, state_dir=state_dir,
                       lock_timeout=args.lock_timeout, verbose=args.verbose,
                       log_format=args.log_format)
    recap = Recap()
    run_plays(planned, transport_for=transport_factory(inventory, ssh_options(args)),
              flags=flags, recap=recap, renderer=renderer, forks=args.forks)
    renderer.finish(recap)
    return recap.exit_code


def validate(inventory_path: Path | None, limit: str | None, paths: list[str]) -> tuple[int, int]:
    _, planned = _plan(inventory_path, limit, paths)
    hosts = {state.host for play in planned for state in play.hosts}
    documents = sum(len(state.documents) for play in planned for state in play.hosts)
    return len(hosts), documents


def render(inventory_path: Path | None, limit: str | None, paths: list[str]) -> str:
    """Each host's desired state per play; a single host and play prints just its state."""
    _, planned = _plan(inventory_path, limit, paths)
    states = [(play, state) for play in planned for state in play.hosts]
    if len(states) == 1:
        return desired_state_json(states[0][1].host, states[0][1].documents)
    return "\n".join(f"# play: {play.play.title()} host: {state.host}\n"
                     + desired_state_json(state.host, state.documents)
                     for play, state in states)


def inventory_list(inventory_path: Path | None) -> dict[str, Any]:
    return to_ansible_list(load_inventory(inventory_path))


def bootstrap(args: argparse.Namespace) -> int:
    from controller.bootstrap.command import run_bootstrap

    return run_bootstrap(args)
