"""The agent's exception tree.

    PyprovError
    ├── LockTimeout           another pass holds the host lock
    ├── StateDirError         the state directory is unusable
    ├── ProtocolError         the desired state is not for this agent
    ├── ResourceError         a resource could not be observed or applied
    │   ├── UnparsableFile    a file pyprov must edit holds something it cannot parse
    │   └── RestartFailed     a service manager did not restart a daemon
    ├── RegistryError         a registry refused, failed or answered what it must not
    │   ├── AuthError         credentials missing or refused (401/403), or a token flow failed
    │   ├── NotFound          no such repository, tag, manifest or blob (404)
    │   ├── UnsupportedManifest  schema 1, an unknown media type, no matching platform
    │   └── TransientRegistryError (also Transient)  5xx, 429, a reset: worth a retry
    ├── ContentError          bytes that are not what they promised
    │   ├── DigestMismatch    (expected, actual)
    │   └── SizeMismatch      (expected, actual)
    └── StoreError            the image store refused or cannot do something
        └── UnsafeLayer       a layer entry would escape its root or make what it must not

``Transient`` is a marker: the one retry policy (tenacity) retries exactly the errors
that carry it, never on message text.
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

    def __reduce__(self) -> tuple[type, tuple[str, str, float]]:
        return type(self), (self.path, self.holder, self.waited)


class StateDirError(PyprovError):
    pass


class ProtocolError(PyprovError):
    def __init__(self, got: object, expected: int) -> None:
        super().__init__(f"desired state speaks protocol {got!r}; this agent speaks {expected}")
        self.got, self.expected = got, expected

    def __reduce__(self) -> tuple[type, tuple[object, int]]:
        return type(self), (self.got, self.expected)


class ResourceError(PyprovError):
    pass


class UnparsableFile(ResourceError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"{path} is not valid JSON ({reason}); fix it by hand or re-run with --force "
            "to replace it (its content is kept as a backup)"
        )
        self.path, self.reason = path, reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.path, self.reason)


class RestartFailed(ResourceError):
    pass


class Transient(Exception):
    """Marker: retrying the same request may succeed (connection reset, 5xx, 429)."""

    retry_after: float | None = None


class RegistryError(PyprovError):
    """``status``: the HTTP status, ``code``: the distribution error code
    (``MANIFEST_UNKNOWN``, ``BLOB_UNKNOWN``, ``DENIED``...), when the registry gave them."""

    def __init__(self, message: str, *, status: int | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code = status, code

    def __reduce__(self) -> tuple[object, ...]:  # keyword fields survive pickling
        return _rebuild, (type(self), str(self), dict(vars(self)))


class AuthError(RegistryError):
    pass


class NotFound(RegistryError):
    pass


class UnsupportedManifest(RegistryError):
    pass


class TransientRegistryError(RegistryError, Transient):
    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class ContentError(PyprovError):
    """Bytes that are not what their descriptor promised: never admitted to the store."""

    def __init__(self, what: str, expected: str | int, actual: str | int) -> None:
        super().__init__(f"{what}: expected {expected}, got {actual}")
        self.what, self.expected, self.actual = what, expected, actual

    def __reduce__(self) -> tuple[type, tuple[str, str | int, str | int]]:
        return type(self), (self.what, self.expected, self.actual)


class DigestMismatch(ContentError):
    pass


class SizeMismatch(ContentError):
    pass


class StoreError(PyprovError):
    pass


class UnsafeLayer(StoreError):
    """``member`` is the tar entry's name as the archive spells it."""

    def __init__(self, member: str, reason: str) -> None:
        super().__init__(f"refused layer entry {member!r}: {reason}")
        self.member, self.reason = member, reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.member, self.reason)


def _rebuild(cls: type[RegistryError], message: str, fields: dict[str, object]) -> RegistryError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(fields)
    return error
