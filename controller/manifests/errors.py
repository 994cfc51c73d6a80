"""Manifest errors name the file, line, column and field path."""

from __future__ import annotations

from dataclasses import dataclass

from controller.errors import ControllerError


@dataclass(frozen=True)
class ManifestProblem:
    file: str
    line: int  # 1-based
    column: int  # 1-based
    field: str  # e.g. "ports[2]"; "" for the document or file itself
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


class ManifestError(ControllerError):
    """One or more manifests are invalid; nothing may be applied."""

    def __init__(self, problems: list[ManifestProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems
