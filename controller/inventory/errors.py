"""Inventory errors: where (file, line when known) and why, never a traceback.

    ControllerError
    └── InventoryError    an inventory source, a vars file, a pattern or a host's
                          connection variables cannot be used
"""

from __future__ import annotations

from controller.errors import ControllerError


class InventoryError(ControllerError):
    """``file`` and ``line`` (1-based) are ``None`` when the problem has no place in a file."""

    def __init__(self, reason: str, file: str | None = None, line: int | None = None) -> None:
        where = file or ""
        if file is not None and line is not None:
            where = f"{file}:{line}"
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason, self.file, self.line = reason, file, line
