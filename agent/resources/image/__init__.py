"""The Image resource: an image the host must hold, pulled (or loaded from an archive)
into pyprov's store by its own registry client.

observe.py reads the store (and, for ``pull: always``, the registry's current digest),
plan.py decides (pure), apply.py pulls or loads.
"""

from __future__ import annotations

from agent.model import Image
from agent.reconcile.actions import Action, Applied, Options
from agent.reconcile.handler import HostContext
from agent.resources.image.apply import apply
from agent.resources.image.observe import ObservedImage, observe
from agent.resources.image.plan import plan


class ImageHandler:
    kind = "Image"

    def observe(self, doc: Image, ctx: HostContext) -> ObservedImage:
        return observe(doc, ctx)

    def plan(self, doc: Image, observed: ObservedImage, options: Options) -> Action:
        return plan(doc, observed, options)

    def apply(self, doc: Image, action: Action, ctx: HostContext) -> Applied:
        return apply(doc, action, ctx)


__all__ = ["ImageHandler"]
