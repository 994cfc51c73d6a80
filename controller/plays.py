"""Plays -> the desired state of every host, rendered and validated before any contact.

For each play: its hosts (the play's pattern, narrowed by ``--limit``), and for each
host its manifests rendered with Ansible's variables (host and group vars, play vars,
``inventory_hostname``, ``groups``, ``group_names``, ``hostvars``), then validated.
Every problem of every host is collected; one is enough for nothing to be applied.

Unlike Ansible, the plays' documents for a host are merged into ONE desired state (in
play order) and validated together: a host's stored desired state is then its whole
state, which the agent's loop and drift check need, and each host costs one agent run.
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
from controller.manifests.loader import (
    ManifestSource,
    ParseCache,
    SourcedDocument,
    conflict_problems,
    parse_sources,
    read_sources,
)
from controller.playbooks.model import Play
from controller.templating.render import Renderer, is_template


@dataclass(frozen=True)
class HostState:
    host: str
    documents: list[Document]
    plays: tuple[str, ...]  # the titles of the plays that gave the host documents


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
         templates: set[str] | None) -> list[ManifestProblem]:
    """Name the host where the fault is its own (its rendering of ``templates``, or every
    file when ``templates`` is None); a static file's fault is everyone's."""
    return [ManifestProblem(p.file, p.line, p.column, p.field, f"{p.message} (host {host})")
            if templates is None or p.file in templates else p for p in problems]


def plan_plays(plays: Sequence[Play], inventory: Inventory,
               limit: str | None = None) -> list[HostState]:
    """Every host's merged desired state, in inventory order; ``ManifestError`` lists every
    fault (of any host, any play) before anything is contacted."""
    renderer = Renderer()
    groups = groups_of(inventory)
    per_host: dict[str, list[SourcedDocument]] = {}
    titles: dict[str, list[str]] = {}
    problems: list[ManifestProblem] = []
    seen: set[str] = set()
    sources_by_play: dict[tuple[str, ...], list[ManifestSource]] = {}
    cache: ParseCache = {}
    for play in plays:
        if not play.manifests:
            problems.append(ManifestProblem(play.title(), 1, 1, "manifests",
                                            "a play to apply needs manifests"))
            continue
        key = tuple(play.manifests)
        if key not in sources_by_play:
            sources_by_play[key] = read_sources([Path(m) for m in play.manifests])
        sources = sources_by_play[key]
        templates = {str(s.file) for s in sources if is_template(s.text)}
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
            per_host.setdefault(host, []).extend(documents)
            titles.setdefault(host, []).append(play.title())
    for host, documents in per_host.items():
        found = [p for p in _tag(conflict_problems(documents), host, None) if str(p) not in seen]
        seen.update(str(p) for p in found)
        problems.extend(found)
    if problems:
        raise ManifestError(problems)
    order = {name: index for index, name in enumerate(inventory.hosts)}
    return [HostState(host, [d.document for d in documents], tuple(titles[host]))
            for host, documents in sorted(per_host.items(), key=lambda i: order.get(i[0], 0))]
