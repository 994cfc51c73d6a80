"""Rendering a manifest for one host: Jinja2 with StrictUndefined, errors at file:line.

A manifest with no Jinja2 markup is not a template: it is parsed once and shared by
every host, which keeps a fleet run's controller CPU flat in the number of hosts.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from controller.manifests.errors import ManifestError, ManifestProblem
from controller.manifests.loader import ManifestSource

_MARKERS = ("{{", "{%", "{#")


def is_template(text: str) -> bool:
    return any(marker in text for marker in _MARKERS)


def _template_line(exc: BaseException, name: str) -> int:
    """The template line an exception was raised at (Jinja2 rewrites tracebacks so)."""
    lineno = getattr(exc, "lineno", None)
    if isinstance(lineno, int) and lineno > 0:
        return lineno
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == name and frame.lineno:
            return frame.lineno
    return 1


class Renderer:
    """Compiles each template once; renders it for any number of hosts."""

    def __init__(self) -> None:
        self._environment = jinja2.Environment(
            # YAML, not HTML: escaping would corrupt values (S701 is about XSS).
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
            autoescape=False,  # noqa: S701
            extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"],
        )
        self._compiled: dict[Path, jinja2.Template] = {}

    def _template(self, source: ManifestSource) -> jinja2.Template:
        template = self._compiled.get(source.file)
        if template is None:
            try:
                code = self._environment.compile(source.text, name=str(source.file),
                                                 filename=str(source.file))
            except jinja2.TemplateSyntaxError as exc:
                raise ManifestError([ManifestProblem(str(source.file), exc.lineno or 1, 1, "",
                                                     f"template syntax: {exc.message}")]) from None
            template = self._environment.template_class.from_code(
                self._environment, code, self._environment.make_globals(None))
            self._compiled[source.file] = template
        return template

    def render(self, source: ManifestSource, variables: Mapping[str, Any]) -> str:
        """The manifest's text for one host; ``ManifestError`` names file and line."""
        if not is_template(source.text):
            return source.text
        template = self._template(source)
        try:
            return template.render(variables)
        except jinja2.UndefinedError as exc:
            raise _problem(source, exc, f"undefined variable: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise _problem(source, exc, f"template: {exc}") from None
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise _problem(source, exc, f"template: {type(exc).__name__}: {exc}") from None


def _problem(source: ManifestSource, exc: BaseException, message: str) -> ManifestError:
    line = _template_line(exc, str(source.file))
    return ManifestError([ManifestProblem(str(source.file), line, 1, "", message)])
