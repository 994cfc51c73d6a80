"""What each ``pyprov`` sub-command does, behind the argument parsing of cli.py."""

from __future__ import annotations

import argparse
from pathlib import Path

from controller.errors import ControllerError
from controller.inventory import Inventory, dump_ansible_list, load_inventory
from controller.playbooks.model import Play, is_playbook, load_playbook
from controller.plays import HostState, plan_plays
from controller.report.recap import Recap
from controller.report.render import JsonRenderer, Renderer, TextRenderer
from controller.runner import AgentFlags, desired_state_json, run_hosts
from controller.targets import transport_factory
from controller.transports.options import SshOptions


def plays_from(paths: list[str]) -> list[Play]:
    """A playbook file, or manifest paths as one play on every host."""
    if len(paths) == 1 and is_playbook(Path(paths[0])):
        return load_playbook(Path(paths[0]))
    return [Play(name=" ".join(paths), hosts="all",
                 manifests=[str(Path(p).absolute()) for p in paths])]


def _plan(inventory_path: Path | None, limit: str | None,
          paths: list[str]) -> tuple[Inventory, list[HostState]]:
    inventory = load_inventory(inventory_path)
    states = plan_plays(plays_from(paths), inventory, limit)
    if not states:
        raise ControllerError(f"no hosts matched (limit: {limit or 'none'})")
    return inventory, states


def ssh_options(args: argparse.Namespace) -> SshOptions:
    defaults = SshOptions()
    return SshOptions(known_hosts=args.known_hosts or defaults.known_hosts,
                      accept_new=args.ssh_accept_new, ssh_config=args.ssh_config)


def apply(args: argparse.Namespace) -> int:
    check = args.command == "check" or args.check
    inventory, states = _plan(args.inventory, args.limit, args.paths)
    renderer: Renderer = (JsonRenderer() if args.output == "json"
                          else TextRenderer(show_diff=args.diff))
    state_dir = str(Path(args.state_dir).absolute()) if args.state_dir else None
    flags = AgentFlags(check=check, diff=args.diff, force=args.force, state_dir=state_dir,
                       lock_timeout=args.lock_timeout, verbose=args.verbose,
                       log_format=args.log_format)
    recap = Recap()
    run_hosts(states, title=" ".join(args.paths),
              transport_for=transport_factory(inventory, ssh_options(args)),
              flags=flags, recap=recap, renderer=renderer, forks=args.forks)
    renderer.finish(recap)
    return recap.exit_code


def validate(inventory_path: Path | None, limit: str | None, paths: list[str]) -> tuple[int, int]:
    _, states = _plan(inventory_path, limit, paths)
    return len(states), sum(len(state.documents) for state in states)


def render(inventory_path: Path | None, limit: str | None, paths: list[str]) -> str:
    """Each host's desired state; a single host prints just its state (what the agent reads)."""
    _, states = _plan(inventory_path, limit, paths)
    if len(states) == 1:
        return desired_state_json(states[0].host, states[0].documents)
    return "\n".join(f"# host: {state.host} (plays: {', '.join(state.plays)})\n"
                     + desired_state_json(state.host, state.documents) for state in states)


def inventory_list(inventory_path: Path | None) -> str:
    """What ``ansible-inventory --list`` prints, byte for byte."""
    return dump_ansible_list(load_inventory(inventory_path))


def bootstrap(args: argparse.Namespace) -> int:
    from controller.bootstrap.command import run_bootstrap

    return run_bootstrap(args)


def drift(args: argparse.Namespace) -> int:
    from controller.drift import gather, render_json, render_text
    from controller.inventory import select

    inventory = load_inventory(args.inventory)
    hosts = select(inventory, args.limit or "all")
    if not hosts:
        raise ControllerError(f"no hosts matched (limit: {args.limit or 'none'})")
    state_dir = str(Path(args.state_dir).absolute()) if args.state_dir else None
    fleet = gather(hosts, transport_factory(inventory, ssh_options(args)), now=args.now,
                   state_dir=state_dir, forks=args.forks)
    print(render_json(fleet) if args.output == "json" else render_text(fleet), end="")
    return fleet.exit_code
