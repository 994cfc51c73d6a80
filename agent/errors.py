"""The agent's exception tree.

    PyprovError
    ├── LockTimeout           another pass holds the host lock
    ├── StateDirError         the state directory is unusable
    ├── ProtocolError         the desired state is not for this agent
    └── ResourceError         a resource could not be observed or applied
        ├── UnparsableFile    a file pyprov must edit holds something it cannot parse
        └── RestartFailed     a service manager did not restart a daemon
"""

from __future__ import annotations


class PyprovError(Exception):
    """Root of every error pyprov raises on purpose."""


class LockTimeout(PyprovError):
    def __init__(self, path: str, holder: str, waited: float) -> None:
        super().__init__(
            f"another pyprov pass ({holder}) holds {path}; gave up after {waited:.0f}s "
            "(raise --lock-timeout to wait longer)"
        )
        self.path, self.holder, self.waited = path, holder, waited


class StateDirError(PyprovError):
    pass


class ProtocolError(PyprovError):
    def __init__(self, got: object, expected: int) -> None:
        super().__init__(f"desired state speaks protocol {got!r}; this agent speaks {expected}")
        self.got, self.expected = got, expected


class ResourceError(PyprovError):
    pass


class UnparsableFile(ResourceError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"{path} is not valid JSON ({reason}); fix it by hand or re-run with --force "
            "to replace it (its content is kept as a backup)"
        )
        self.path, self.reason = path, reason


class RestartFailed(ResourceError):
    pass
