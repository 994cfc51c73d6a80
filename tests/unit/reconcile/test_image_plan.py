"""The Image resource's decisions, from observed facts (plan is pure)."""

from __future__ import annotations

import pytest

from agent.model import Image
from agent.oci.media import Descriptor
from agent.reconcile.actions import Options
from agent.resources.image.observe import ObservedImage
from agent.resources.image.plan import plan
from agent.store.layout import StoredImage

OLD, NEW = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def image(name: str = "busybox", **fields: object) -> Image:
    return Image.model_validate({"kind": "Image", "name": name, **fields})


def held(resolved: str = OLD, manifest: str = OLD) -> StoredImage:
    return StoredImage("docker.io/library/busybox:latest",
                       Descriptor("application/vnd.oci.image.manifest.v1+json", manifest, 1),
                       resolved)


@pytest.mark.parametrize(("doc", "observed", "op", "refused"), [
    (image(), ObservedImage(None, complete=False), "create", False),
    (image(), ObservedImage(held(), complete=True), "none", False),
    (image(), ObservedImage(held(), complete=False), "create", False),  # resumes a pull
    (image(pull="never"), ObservedImage(None, complete=False), "create", True),
    (image(pull="never"), ObservedImage(held(), complete=True), "none", False),
    (image(pull="always"), ObservedImage(held(), True, remote=OLD), "none", False),
    (image(pull="always"), ObservedImage(held(), True, remote=NEW), "update", False),
    (image(pull="always"), ObservedImage(held(), True, remote_error="down"), "update", True),
    (image(f"busybox@{OLD}"), ObservedImage(held(), complete=True), "none", False),
    (image(f"busybox@{NEW}"), ObservedImage(held(), complete=True), "create", False),
    (image(f"busybox@{NEW}", pull="never"), ObservedImage(held(), True), "create", True),
    (image(f"busybox@{NEW}"), ObservedImage(held(NEW, OLD), complete=True), "none", False),
    (image(archive="/srv/busybox.tar"), ObservedImage(None, False), "create", False),
    (image(archive="/srv/busybox.tar", pull="never"), ObservedImage(None, False), "create",
     False),
])
def test_image_plans(doc: Image, observed: ObservedImage, op: str, refused: bool) -> None:
    action = plan(doc, observed, Options())
    assert action.op == op
    assert (action.refused is not None) is refused
    if op != "none" and not refused:
        assert action.payload == ("load" if doc.archive else "pull")


def test_a_stale_image_is_reported_with_both_digests() -> None:
    action = plan(image(pull="always"), ObservedImage(held(), True, remote=NEW), Options(
        check=True))
    assert action.changes == ("digest 111111111111 -> 222222222222",)
