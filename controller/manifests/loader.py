"""Manifest files and directories -> validated documents, or every problem found.

Directories are read recursively in sorted order (``*.yml``, ``*.yaml``), skipping
hidden files and directories (``.github/``, ``.git/``). Top-level ``x-*`` keys are
docker-compose extension fields (often anchors for ``<<`` merges) and are ignored. Each
document is validated against its kind's model with the manifest's directory as
context (relative volume paths resolve against it). Nothing is returned unless
every document of every file is valid.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.model import Document, document_class
from agent.model.documents import conflicts
from controller.manifests.errors import ManifestError, ManifestProblem
from controller.manifests.yaml_nodes import LoadedDocument, Positions, YamlProblem, load_documents

MAX_FILE_BYTES = 4 * 1024 * 1024
SUFFIXES = (".yml", ".yaml")
EXTENSION_PREFIX = "x-"


@dataclass(frozen=True)
class SourcedDocument:
    """A validated document and where it came from."""

    document: Document
    file: str
    line: int
    column: int
    positions: Positions


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def manifest_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES
                                and not _hidden(p.relative_to(path)) and p.is_file()))
        else:
            files.append(path)
    return files


def format_path(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path[:12]:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text + ("..." if len(path) > 12 else "")


def _locate(loc: tuple[str | int, ...], positions: Positions, fallback: tuple[int, int],
            key_errors: bool) -> tuple[tuple[str | int, ...], tuple[int, int]]:
    """The deepest field path of a pydantic ``loc`` that the YAML has, and its position."""
    path: tuple[str | int, ...] = ()
    for part in loc:
        if (*path, part) in positions.values:
            path = (*path, part)
    if key_errors and path in positions.keys:
        return path, positions.keys[path]
    return path, positions.values.get(path, fallback)


def _yaml_hint(value: object) -> str:
    """Why a scalar may not be what the user typed: YAML 1.1's implicit types."""
    if isinstance(value, bool):
        return (" (YAML read an unquoted yes/no/on/off/true/false as a boolean: quote it)")
    if isinstance(value, int | float):
        return " (YAML read it as a number: quote it)"
    return ""


def _unknown_field(model: type[BaseModel], name: object) -> str:
    close = difflib.get_close_matches(str(name), list(model.model_fields), n=1)
    return "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")


def validation_problems(file: str, loaded: LoadedDocument, model: type[BaseModel],
                         exc: ValidationError) -> list[ManifestProblem]:
    problems = []
    for error in exc.errors(include_url=False):
        # A SyntaxProblem may name a path below pydantic's loc (a daemon.json key).
        cause = error.get("ctx", {}).get("error")
        loc = (*error["loc"], *getattr(cause, "at", ()))
        key_error = error["type"] == "extra_forbidden" or getattr(cause, "at_key", False)
        path, (line, column) = _locate(loc, loaded.positions, (loaded.line, loaded.column),
                                       key_error)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = _unknown_field(model, loc[-1])
        elif error["type"] in ("literal_error", "string_type", "enum"):
            message += _yaml_hint(error.get("input"))
        elif error["type"] == "missing":
            message = f"missing required field {loc[-1]!r}"
            path = loc
        problems.append(ManifestProblem(file, line, column, format_path(path), message))
    return problems


def _validate(file: Path, loaded: LoadedDocument) -> tuple[Any, list[ManifestProblem]]:
    name = str(file)
    value = loaded.value
    if value is None:
        return None, [ManifestProblem(name, loaded.line, loaded.column, "",
                                      "empty document (remove the stray '---')")]
    if not isinstance(value, dict):
        return None, [ManifestProblem(name, loaded.line, loaded.column, "",
                                      "a document must be a mapping with 'kind' and 'name'")]
    # docker-compose extension fields; the positions of the other keys are unchanged.
    value = {key: item for key, item in value.items() if not key.startswith(EXTENSION_PREFIX)}
    try:
        model = document_class(value.get("kind"))
    except KeyError as exc:
        line, column = loaded.positions.values.get(("kind",), (loaded.line, loaded.column))
        message = str(exc.args[0]) if "kind" in value else "missing required field 'kind'"
        return None, [ManifestProblem(name, line, column, "kind", message)]
    try:
        document = model.model_validate(value, context={"base_dir": str(file.parent.absolute())})
    except ValidationError as exc:
        return None, validation_problems(name, loaded, model, exc)
    return document, []


@dataclass(frozen=True)
class ManifestSource:
    """A manifest file's text, read once and rendered per host when it is a template."""

    file: Path
    text: str


Render = Callable[[ManifestSource], str]


def read_source(file: Path) -> tuple[ManifestSource | None, list[ManifestProblem]]:
    name = str(file)
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, [ManifestProblem(name, 1, 1, "", f"file is larger than {MAX_FILE_BYTES} "
                                          "bytes")]
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        before = exc.object[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        return None, [ManifestProblem(name, line, column, "", f"not UTF-8 text ({exc.reason})")]
    except FileNotFoundError:
        return None, [ManifestProblem(name, 1, 1, "", "no such file or directory")]
    except OSError as exc:
        return None, [ManifestProblem(name, 1, 1, "", f"cannot read: {exc.strerror}")]
    return ManifestSource(file, text), []


def parse_text(file: Path, text: str) -> tuple[list[SourcedDocument], list[ManifestProblem]]:
    """The validated documents of one manifest's (rendered) text."""
    name = str(file)
    try:
        loaded_documents = load_documents(text)
    except YamlProblem as exc:
        return [], [ManifestProblem(name, exc.line, exc.column, format_path(exc.path),
                                    exc.message)]
    if not loaded_documents:
        return [], [ManifestProblem(name, 1, 1, "", "holds no document")]
    documents, problems = [], []
    for loaded in loaded_documents:
        document, found = _validate(file, loaded)
        problems.extend(found)
        if document is not None:
            documents.append(SourcedDocument(document, name, loaded.line, loaded.column,
                                             loaded.positions))
    return documents, problems


def load_file(file: Path) -> tuple[list[SourcedDocument], list[ManifestProblem]]:
    """One file read and parsed as it is (no template rendering)."""
    source, problems = read_source(file)
    if source is None:
        return [], problems
    return parse_text(source.file, source.text)


def read_sources(paths: Iterable[str | Path]) -> list[ManifestSource]:
    """Every manifest file under ``paths``, read; ``ManifestError`` lists what cannot be."""
    paths = list(paths)
    files = manifest_files(paths)
    problems: list[ManifestProblem] = []
    if not files:
        problems.append(ManifestProblem(", ".join(map(str, paths)) or ".", 1, 1, "",
                                        "no manifest files (*.yml, *.yaml) found"))
    sources = []
    for file in files:
        source, found = read_source(file)
        problems.extend(found)
        if source is not None:
            sources.append(source)
    if problems:
        raise ManifestError(problems)
    return sources


def conflict_problems(documents: list[SourcedDocument]) -> list[ManifestProblem]:
    problems = []
    for index, path, message in conflicts([d.document for d in documents]):
        source = documents[index]
        line, column = source.positions.values.get(path, (source.line, source.column))
        problems.append(ManifestProblem(source.file, line, column, format_path(path), message))
    return problems


ParseCache = dict[Path, tuple[list[SourcedDocument], list[ManifestProblem]]]


def parse_sources(sources: Iterable[ManifestSource], render: Render | None = None,
                  is_template: Callable[[str], bool] | None = None,
                  cache: ParseCache | None = None) -> list[SourcedDocument]:
    """Render (when given a renderer), parse and validate every source together.

    ``render`` raises ``ManifestError`` for template faults; every problem of every
    source is collected before raising. Sources that are not templates are parsed
    once into ``cache`` and shared by every host.
    """
    documents: list[SourcedDocument] = []
    problems: list[ManifestProblem] = []
    for source in sources:
        static = render is None or (is_template is not None and not is_template(source.text))
        if static and cache is not None and source.file in cache:
            found, file_problems = cache[source.file]
            documents.extend(found)
            problems.extend(file_problems)
            continue
        try:
            text = source.text if static or render is None else render(source)
        except ManifestError as exc:
            problems.extend(exc.problems)
            continue
        found, file_problems = parse_text(source.file, text)
        if static and cache is not None:
            cache[source.file] = (found, file_problems)
        documents.extend(found)
        problems.extend(file_problems)
    problems.extend(conflict_problems(documents))
    if problems:
        raise ManifestError(problems)
    return documents


def load_manifests(paths: Iterable[str | Path]) -> list[SourcedDocument]:
    """Every document of every manifest, validated together; ``ManifestError`` lists all faults."""
    return parse_sources(read_sources(paths))
