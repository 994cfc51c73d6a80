"""pytest fixtures for registry tests. Use with ``pytest_plugins = ["tests.registry.fixtures"]``.

Session-scoped, up before the first test that asks, always closed at the end:

- ``registry_images`` -> :class:`TestImages`: the small images and the refs they are
  pushed under (``busybox:docker``, ``busybox:oci``, ``busybox:zstd``, ``multi:latest``,
  ``multi:list``).
- ``registry`` -> :class:`Registry`: plain HTTP with all of ``registry_images`` pushed.
- ``auth_registry``: htpasswd (``auth_registry.users`` == ``contents.USERS``),
  ``busybox:oci`` pushed.
- ``token_registry``: token auth; ``token_registry.token_server`` is the
  :class:`TokenServer` on 127.0.0.2 (another "host"); alice may pull and push, bob only
  pull, anonymous nothing; ``busybox:oci`` pushed.
- ``mirror_registry``: a pull-through cache of ``registry`` (``mirror.upstream``).
- ``tls_registry``: HTTPS with a throw-away CA (``tls_registry.ca_path``), ``busybox:oci``.
- ``big_image`` -> :class:`Image`: the ~200 MB benchmark image (cached on disk), built
  only when a test asks for it.

Function-scoped: ``hostile`` (a fresh :class:`HostileRegistry`) and ``scratch_registry``
(an empty plain registry for tests that push, delete or stop it).

A registry that cannot come up FAILS the tests that use it (with its log), never skips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

import pytest

from tests.registry.big import big_image as build_big_image
from tests.registry.client import PushError, push
from tests.registry.contents import REALM_HOST, TOKEN_GRANTS, USERS, TestImages
from tests.registry.hostile import HostileRegistry
from tests.registry.images import (
    Image,
    ImageBuildError,
    ImageIndex,
    busybox_image,
    multi_platform_index,
)
from tests.registry.server import Registry, RegistryError, reap_stale_registries
from tests.registry.token_server import TokenServer

T = TypeVar("T")


@pytest.fixture(scope="session")
def registry_images() -> TestImages:
    made, problem = _attempt(lambda: TestImages(
        busybox_image("docker"), busybox_image("oci"), busybox_image("zstd"),
        multi_platform_index("oci"), multi_platform_index("docker")))
    if made is None:
        pytest.fail(f"the test images could not be built:\n{problem}", pytrace=False)
    return made


@pytest.fixture(scope="session")
def registry(registry_images: TestImages) -> Iterator[Registry]:
    yield from _serving(Registry(name="registry"), registry_images.by_reference())


@pytest.fixture(scope="session")
def auth_registry(registry_images: TestImages) -> Iterator[Registry]:
    yield from _serving(Registry(users=USERS, name="auth-registry"),
                        {"busybox:oci": registry_images.busybox_oci}, auth=("alice", "wonderland"))


@pytest.fixture(scope="session")
def token_registry(registry_images: TestImages) -> Iterator[Registry]:
    with TokenServer(USERS, TOKEN_GRANTS, address=REALM_HOST) as token_server:
        yield from _serving(Registry(token_server=token_server, name="token-registry"),
                            {"busybox:oci": registry_images.busybox_oci},
                            auth=("alice", "wonderland"))


@pytest.fixture(scope="session")
def mirror_registry(registry: Registry) -> Iterator[Registry]:
    yield from _serving(Registry(upstream=registry, name="mirror-registry"), {})


@pytest.fixture(scope="session")
def tls_registry(registry_images: TestImages) -> Iterator[Registry]:
    yield from _serving(Registry(tls=True, name="tls-registry"),
                        {"busybox:oci": registry_images.busybox_oci})


@pytest.fixture(scope="session")
def big_image() -> Image:
    built, problem = _attempt(build_big_image)
    if built is None:
        pytest.fail(f"the big test image could not be built:\n{problem}", pytrace=False)
    return built


@pytest.fixture
def scratch_registry() -> Iterator[Registry]:
    yield from _serving(Registry(name="scratch-registry"), {})


@pytest.fixture
def hostile() -> Iterator[HostileRegistry]:
    with HostileRegistry() as server:
        yield server
        if server.errors:
            pytest.fail(f"hostile registry behaviours raised: {server.errors!r}", pytrace=False)


def _serving(registry: Registry, images: Mapping[str, Image | ImageIndex], *,
             auth: tuple[str, str] | None = None) -> Iterator[Registry]:
    """Start ``registry``, push ``images`` (``repo:tag`` -> image), yield it, close it."""
    reap_stale_registries()
    _, problem = _attempt(lambda: _start_and_push(registry, images, auth))
    try:
        if problem:
            pytest.fail(f"test registry {registry.name} did not come up:\n{problem}",
                        pytrace=False)
        yield registry
    finally:
        _, closing = _attempt(registry.close)
        if closing:
            pytest.fail(closing, pytrace=False)


def _start_and_push(registry: Registry, images: Mapping[str, Image | ImageIndex],
                    auth: tuple[str, str] | None) -> None:
    registry.start()
    for reference, image in images.items():
        repository, _, tag = reference.rpartition(":")
        try:
            push(registry, repository, tag, image, auth=auth)
        except (PushError, OSError) as error:
            raise RegistryError(f"push of {reference} failed: {error}\nregistry log:\n"
                                f"{registry.log_tail()}") from error


def _attempt(action: Callable[[], T]) -> tuple[T | None, str]:
    """(result, "") or (None, message): pytest.fail outside ``except`` reads better."""
    try:
        return action(), ""
    except (RegistryError, ImageBuildError, OSError) as error:
        return None, str(error)
