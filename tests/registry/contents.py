"""What the fixture registries are set up with: users, token grants, images and tags.

Kept apart from ``fixtures.py`` so test modules can import these names without importing
the pytest plugin module itself (which pytest must import first, to rewrite its asserts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tests.registry.images import Image, ImageIndex
from tests.registry.token_server import ANONYMOUS, Grants

__all__ = ["REALM_HOST", "TOKEN_GRANTS", "USERS", "TestImages"]

USERS: Mapping[str, str] = {"alice": "wonderland", "bob": "builder"}
TOKEN_GRANTS: Grants = {
    "alice": {"repository:*": ("pull", "push", "delete"), "registry:catalog": ("*",)},
    "bob": {"repository:*": ("pull",)},
    ANONYMOUS: {},
}
REALM_HOST = "127.0.0.2"  # the token server plays another host than the registry


@dataclass(frozen=True)
class TestImages:
    """The small test images, by the ``repository:tag`` each registry has them under."""

    __test__ = False  # not a test class, whatever its name says

    busybox_docker: Image
    busybox_oci: Image
    busybox_zstd: Image
    multi_index: ImageIndex
    multi_list: ImageIndex

    def by_reference(self) -> dict[str, Image | ImageIndex]:
        return {"busybox:docker": self.busybox_docker, "busybox:oci": self.busybox_oci,
                "busybox:zstd": self.busybox_zstd, "multi:latest": self.multi_index,
                "multi:list": self.multi_list}
