"""Plays -> the desired state of every host, rendered and validated before any contact.

For each play: its hosts (the play's pattern, narrowed by ``--limit``), and for each
host its manifests rendered with Ansible's variables (host and group vars, play vars,
``inventory_hostname``, ``groups``, ``group_names``, ``hostvars``), then validated.
Every problem of every host is collected; one is enough for nothing to be applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from agent.model import Document
from controller.inventory import Inventory, select
from controller.manifests.errors import ManifestError, ManifestProblem
from controller.manifests.loader import ManifestSource, ParseCache, parse_sources, read_sources
from controller.playbooks.model import Play
from controller.templating.render import Renderer, is_template


@dataclass(frozen=True)
class HostState:
    host: str
    documents: list[Document]


@dataclass(frozen=True)
class PlannedPlay:
    play: Play
    hosts: list[HostState]


def groups_of(inventory: Inventory) -> dict[str, list[str]]:
    """Ansible's ``groups``: every group (``all`` and ``ungrouped`` included) -> its hosts."""
    groups: dict[str, list[str]] = {"all": list(inventory.hosts)}
    for name, host in inventory.hosts.items():
        for group in host.groups:
            members = groups.setdefault(group, [])
            if name not in members:
                members.append(name)
    return groups


def host_variables(inventory: Inventory, host: str, play: Play,
                   groups: Mapping[str, list[str]]) -> dict[str, Any]:
    """What a manifest template sees for ``host``: play vars over inventory vars, as Ansible."""
    hostvars = {name: {**h.vars, "inventory_hostname": name}
                for name, h in inventory.hosts.items()}
    own = inventory.hosts[host]
    return {
        **own.vars,
        **play.vars,
        "inventory_hostname": host,
        "inventory_hostname_short": host.split(".", 1)[0],
        "group_names": sorted(g for g in own.groups if g not in ("all", "ungrouped")),
        "groups": groups,
        "hostvars": hostvars,
    }


def play_hosts(inventory: Inventory, play: Play, limit: str | None) -> list[str]:
    hosts = select(inventory, play.hosts)
    if limit:
        allowed = set(select(inventory, limit))
        hosts = [h for h in hosts if h in allowed]
    return hosts


def _tag(problems: Sequence[ManifestProblem], host: str,
         templates: set[str]) -> list[ManifestProblem]:
    """Name the host where its rendering is at fault; a static file's fault is everyone's."""
    return [ManifestProblem(p.file, p.line, p.column, p.field, f"{p.message} (host {host})")
            if p.file in templates else p for p in problems]


def plan_plays(plays: Sequence[Play], inventory: Inventory,
               limit: str | None = None) -> list[PlannedPlay]:
    """Every host's desired state for every play; ``ManifestError`` lists every fault."""
    renderer = Renderer()
    groups = groups_of(inventory)
    planned: list[PlannedPlay] = []
    problems: list[ManifestProblem] = []
    seen: set[str] = set()
    sources_by_play: dict[tuple[str, ...], list[ManifestSource]] = {}
    cache: ParseCache = {}
    for play in plays:
        key = tuple(play.manifests)
        if key not in sources_by_play:
            sources_by_play[key] = read_sources([Path(m) for m in play.manifests])
        sources = sources_by_play[key]
        templates = {str(s.file) for s in sources if is_template(s.text)}
        states = []
        for host in play_hosts(inventory, play, limit):
            variables = host_variables(inventory, host, play, groups)
            try:
                documents = parse_sources(sources, render=partial(renderer.render,
                                                                  variables=variables),
                                          is_template=is_template, cache=cache)
            except ManifestError as exc:
                tagged = [p for p in _tag(exc.problems, host, templates) if str(p) not in seen]
                seen.update(str(p) for p in tagged)
                problems.extend(tagged)
                continue
            states.append(HostState(host, [d.document for d in documents]))
        planned.append(PlannedPlay(play, states))
    if problems:
        raise ManifestError(problems)
    return planned
