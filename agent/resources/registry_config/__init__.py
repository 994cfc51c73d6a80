"""The RegistryConfig resource: pyprov's registry settings (mirrors for any registry,
trusted token realms) in ``STATE/registries.json``, which the registry client reads with
daemon.json. The file is written only when its content differs, atomically; it is owned
entirely by this document (there is one per host)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from agent.fsutil.atomic import write_if_changed
from agent.model import RegistryConfig
from agent.reconcile.actions import Action, Applied, Options
from agent.reconcile.handler import HostContext


@dataclass(frozen=True)
class ObservedRegistries:
    content: bytes | None  # None: no file


def render(doc: RegistryConfig) -> bytes:
    settings = {"mirrors": {k: list(v) for k, v in sorted(doc.mirrors.items())},
                "realms": {k: list(v) for k, v in sorted(doc.realms.items())}}
    return (json.dumps(settings, indent=2) + "\n").encode()


class RegistryConfigHandler:
    kind = "RegistryConfig"

    def observe(self, doc: RegistryConfig, ctx: HostContext) -> ObservedRegistries:  # noqa: ARG002
        try:
            return ObservedRegistries(ctx.state.registries.read_bytes())
        except FileNotFoundError:
            return ObservedRegistries(None)

    def plan(self, doc: RegistryConfig, observed: ObservedRegistries,
             options: Options) -> Action:  # noqa: ARG002
        wanted = render(doc)
        if observed.content == wanted:
            return Action("none", "registry settings are as declared")
        what = [f"mirrors for {registry}" for registry in sorted(doc.mirrors)]
        what += [f"token realms for {registry}" for registry in sorted(doc.realms)]
        return Action("create" if observed.content is None else "update",
                      f"write {doc.kind} settings", changes=tuple(what) or ("no settings",),
                      payload=wanted)

    def apply(self, doc: RegistryConfig, action: Action, ctx: HostContext) -> Applied:  # noqa: ARG002
        ctx.state.ensure()
        write_if_changed(ctx.state.registries, action.payload, mode=0o644, dir_mode=0o700)
        return Applied({"path": str(ctx.state.registries)})


__all__ = ["RegistryConfigHandler"]
