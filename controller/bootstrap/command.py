"""``pyprov bootstrap``: the agent installed on every selected host, in parallel."""

from __future__ import annotations

import argparse
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import Any

from agent.model import Event
from controller.bootstrap.install import AgentService, agent_service, bootstrap_host
from controller.bootstrap.wheelhouse import HostPython, build_wheelhouse
from controller.commands import ssh_options
from controller.errors import TransportError
from controller.fanout import fan_out
from controller.inventory import Inventory, connection_for, load_inventory, select
from controller.playbooks.model import Play, load_playbook
from controller.report.recap import Recap
from controller.report.render import JsonRenderer, Renderer, TextRenderer
from controller.runner import LockedRenderer
from controller.targets import DEFAULT_INSTALL_DIR, transport_factory


def _targets(inventory: Inventory, playbook: Path | None,
             limit: str | None) -> dict[str, dict[str, Any]]:
    """Host -> its variables: every host (or the playbook's plays' hosts, with play vars)."""
    plays = load_playbook(playbook) if playbook else [Play(hosts="all")]
    allowed = set(select(inventory, limit)) if limit else None
    targets: dict[str, dict[str, Any]] = {}
    for play in plays:
        for host in select(inventory, play.hosts):
            if allowed is None or host in allowed:
                targets.setdefault(host, dict(inventory.host(host).vars)).update(play.vars)
    return targets


def run_bootstrap(args: argparse.Namespace) -> int:
    inventory = load_inventory(args.inventory)
    targets = _targets(inventory, args.playbook, args.limit)
    hosts = list(targets)
    version = distribution_version("pyprov")
    transport_for = transport_factory(inventory, ssh_options(args))
    renderer: Renderer = JsonRenderer() if args.output == "json" else TextRenderer()
    locked = LockedRenderer(renderer)
    recap = Recap()
    locked.start("bootstrap", False)
    for host in hosts:
        recap.host(host)

    def wheelhouse_for(target: HostPython) -> Path:
        return build_wheelhouse(target, version)

    # Every host's asked-for service, checked before any host is contacted.
    services = {host: AgentService.from_vars(host, targets[host]) for host in hosts}

    def one(host: str) -> None:
        variables = targets[host]
        if connection_for(inventory.host(host)).connection == "local":
            events = [Event(host=host, kind="Agent", name="local",
                            summary="local connection: the controller's own pyprov runs")]
        else:
            events = []
            transport = transport_for(host)
            install_dir = str(variables.get("pyprov_install_dir", DEFAULT_INSTALL_DIR))
            try:
                events.append(bootstrap_host(
                    transport, install_dir=install_dir,
                    system_python=str(variables.get("ansible_python_interpreter", "python3")),
                    version=version, wheelhouse_for=wheelhouse_for))
                events.extend(agent_service(transport, install_dir=install_dir,
                                            service=services[host]))
            except TransportError as exc:
                if exc.unreachable:
                    recap.host(host).unreachable += 1
                failure = Event(host=host, kind="Agent", name="bootstrap", failed=True,
                                summary="UNREACHABLE" if exc.unreachable else "failed",
                                error=exc.reason)
                if exc.unreachable:
                    locked.event(failure)
                    return
                events.append(failure)
            finally:
                transport.close()
        for event in events:
            recap.host(host).add(event)
            locked.event(event)

    fan_out(hosts, one, args.forks)
    locked.finish(recap)
    return recap.exit_code
