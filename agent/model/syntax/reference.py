"""Image references with docker's normalization (distribution/reference's grammar).

``centos`` -> ``docker.io/library/centos:latest``; ``192.168.88.92:5000/centos:7``;
``name@sha256:...``; ``name:tag@sha256:...`` (the digest wins when pulling).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.model.syntax.errors import SyntaxProblem

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_DOMAIN_LABEL = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_DOMAIN = re.compile(
    rf"^(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?\Z"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}\Z", re.ASCII)  # Go's \w is ASCII
_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})\Z")
_MAX_NAME = 255


@dataclass(frozen=True)
class ImageReference:
    """A fully qualified reference: registry, repository, and a tag and/or digest."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def familiar(self) -> str:
        """The short form ``docker images`` shows (``centos:7``, ``host:5000/app:1``)."""
        name = self.name
        if self.registry == DEFAULT_REGISTRY:
            name = self.repository.removeprefix("library/")
        return name + (f":{self.tag}" if self.tag else "") + (
            f"@{self.digest}" if self.digest else "")


def _looks_like_registry(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or (
        component.startswith("["))


def _check_components(remainder: str, components: list[str]) -> None:
    for component in components:
        if component != component.lower() and _COMPONENT.match(component.lower()):
            raise SyntaxProblem(f"repository name {remainder!r} must be lowercase")
        if not _COMPONENT.match(component):
            raise SyntaxProblem(
                f"repository component {component!r} must be lowercase letters and digits "
                "separated by '.', '_', '__' or '-'"
            )


def parse_reference(text: str) -> ImageReference:
    """Parse and normalize an image reference; raise ``SyntaxProblem`` on bad syntax."""
    if not text or len(text) > _MAX_NAME + 200:
        raise SyntaxProblem("an image reference must be 1 to 455 characters")
    remainder, _, digest = text.partition("@")
    if digest and not _DIGEST.match(digest):
        raise SyntaxProblem(f"digest {digest!r} is not sha256:<64 hex> or sha512:<128 hex>")
    tag: str | None = None
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.match(tag):
            raise SyntaxProblem(f"tag {tag!r} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")
    components = remainder.split("/")
    registry = DEFAULT_REGISTRY
    if len(components) > 1 and _looks_like_registry(components[0]):
        registry = components.pop(0)
        if not _DOMAIN.match(registry):
            raise SyntaxProblem(f"registry {registry!r} is not a host[:port]")
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DEFAULT_REGISTRY
    _check_components(remainder, components)
    if registry == DEFAULT_REGISTRY and len(components) == 1:
        components.insert(0, "library")
    repository = "/".join(components)
    if len(registry) + 1 + len(repository) > _MAX_NAME:
        raise SyntaxProblem(f"repository name is longer than {_MAX_NAME} characters")
    if tag is None and not digest:
        tag = DEFAULT_TAG
    return ImageReference(registry, repository, tag, digest or None)
