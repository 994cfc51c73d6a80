"""structlog on stderr: readable on a terminal, JSON lines otherwise or when asked.

structlog (and the asyncio it imports) costs ~60 ms of start-up, paid by every
agent run on every host; most passes log nothing. So ``configure`` only records
the wish, and structlog is imported by the first message actually logged.
"""

from __future__ import annotations

import sys
from typing import Any

_WARNING = 30
_settings: dict[str, Any] = {"verbose": 0, "json_logs": None}
_configured = False


def configure(verbose: int = 0, json_logs: bool | None = None) -> None:
    global _configured  # noqa: PLW0603 - one process-wide logging setup
    _settings.update(verbose=verbose, json_logs=json_logs)
    _configured = False


def _setup() -> None:
    import structlog

    global _configured  # noqa: PLW0603 - one process-wide logging setup
    level = _WARNING - 10 * min(int(_settings["verbose"]), 2)  # logging's levels, unimported
    json_logs = _settings["json_logs"]
    as_json = (not sys.stderr.isatty()) if json_logs is None else json_logs
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    _configured = True


class LazyLogger:
    """A structlog logger that imports and configures structlog on first use."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _log(self, method: str, event: str, **fields: Any) -> None:
        if not _configured:
            _setup()
        import structlog

        getattr(structlog.get_logger(self._name), method)(event, **fields)

    def debug(self, event: str, **fields: Any) -> None:
        self._log("debug", event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log("error", event, **fields)


def get_logger(name: str) -> LazyLogger:
    return LazyLogger(name)
