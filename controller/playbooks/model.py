"""A playbook is a YAML list of plays, as in Ansible; each play names hosts and manifests.

    - name: registry mirrors everywhere
      hosts: all:!registry          # an inventory pattern
      vars: {mirror: "https://docker.m.daocloud.io"}
      manifests: [../manifests/]    # files or directories, relative to the playbook
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from controller.manifests.errors import ManifestError, ManifestProblem
from controller.manifests.loader import read_source, validation_problems
from controller.manifests.yaml_nodes import YamlProblem, load_documents


class Play(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = None
    hosts: str = Field(min_length=1)
    manifests: list[str] = Field(default_factory=list)  # none: a bootstrap-only play
    vars: dict[str, Any] = Field(default_factory=dict)

    def title(self) -> str:
        return self.name or self.hosts


_PLAYS = TypeAdapter(list[Play])


def is_playbook(path: Path) -> bool:
    """A single YAML file whose first document is a list (manifests are mappings)."""
    if not path.is_file() or path.suffix not in (".yml", ".yaml"):
        return False
    source, _ = read_source(path)
    if source is None:
        return False
    for line in source.text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and stripped != "---":
            return stripped.startswith("- ") or stripped == "-"
    return False


def load_playbook(path: Path) -> list[Play]:
    """The plays, with manifest paths made absolute; ``ManifestError`` at file:line."""
    source, problems = read_source(path)
    if source is None:
        raise ManifestError(problems)
    try:
        (document, *rest) = load_documents(source.text)
    except YamlProblem as exc:
        raise ManifestError([ManifestProblem(str(path), exc.line, exc.column, "",
                                             exc.message)]) from None
    except ValueError:
        raise ManifestError([ManifestProblem(str(path), 1, 1, "", "empty playbook")]) from None
    if rest:
        raise ManifestError([ManifestProblem(str(path), rest[0].line, 1, "",
                                             "a playbook is one YAML document")])
    try:
        plays = _PLAYS.validate_python(document.value)
    except ValidationError as exc:
        raise ManifestError(validation_problems(str(path), document, Play, exc)) from None
    base = path.parent.absolute()
    return [play.model_copy(update={"manifests": [str(base / m) for m in play.manifests]})
            for play in plays]
