"""structlog on stderr: readable on a terminal, JSON lines otherwise or when asked."""

from __future__ import annotations

import logging
import sys

import structlog


def configure(verbose: int = 0, json_logs: bool | None = None) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
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
