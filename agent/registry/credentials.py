"""Registry credentials in docker's own file, so ``docker login`` and ``pyprov login`` agree.

``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``: ``auths`` entries keyed by
registry (``host:port``, or a URL such as ``https://index.docker.io/v1/`` for Docker Hub),
each an ``auth`` of base64 ``user:password`` (or ``username``/``password`` fields, or an
``identitytoken``); ``credHelpers`` / ``credsStore`` name a ``docker-credential-*`` helper
that is asked instead. Written atomically, mode 0600; every other key is preserved.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.errors import AuthError
from agent.fsutil.atomic import atomic_write

HUB_KEY = "https://index.docker.io/v1/"  # where docker keeps Docker Hub's credentials
HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = ""
    identity_token: str | None = None

    def __repr__(self) -> str:  # never print a secret, even in a traceback
        return f"Credentials(username={self.username!r}, password=***)"


def config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def registry_key(registry: str) -> str:
    """The registry's host[:port], from a key that may be a URL (docker's own keys are)."""
    host = urlsplit(registry).netloc if "://" in registry else registry.partition("/")[0]
    return "docker.io" if host in HUB_ALIASES else host


class CredentialStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_path()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise AuthError(f"cannot read {self.path}: {exc}") from None
        if not isinstance(data, dict):
            raise AuthError(f"{self.path} is not a JSON object")
        return data

    def get(self, registry: str) -> Credentials | None:
        """Credentials for ``registry`` (``docker.io`` or ``host:port``), or None."""
        data = self._read()
        wanted = registry_key(registry)
        helper = (data.get("credHelpers") or {}).get(wanted) or data.get("credsStore")
        if isinstance(helper, str) and helper:
            found = _from_helper(helper, HUB_KEY if wanted == "docker.io" else wanted)
            if found:
                return found
        for key, entry in (data.get("auths") or {}).items():
            if registry_key(key) == wanted and isinstance(entry, dict):
                return _decode(key, entry)
        return None

    def store(self, registry: str, credentials: Credentials) -> None:
        data = self._read()
        key = HUB_KEY if registry_key(registry) == "docker.io" else registry_key(registry)
        auths = data.setdefault("auths", {})
        for existing in [k for k in auths if registry_key(k) == registry_key(registry)]:
            del auths[existing]
        secret = f"{credentials.username}:{credentials.password}".encode()
        auths[key] = {"auth": base64.b64encode(secret).decode()}
        self._write(data)

    def remove(self, registry: str) -> bool:
        data = self._read()
        auths = data.get("auths") or {}
        gone = [k for k in auths if registry_key(k) == registry_key(registry)]
        for key in gone:
            del auths[key]
        if gone:
            self._write(data)
        return bool(gone)

    def _write(self, data: dict[str, Any]) -> None:
        atomic_write(self.path, (json.dumps(data, indent="\t") + "\n").encode(), mode=0o600,
                     dir_mode=0o700)


def _decode(key: str, entry: dict[str, Any]) -> Credentials | None:
    token = entry.get("identitytoken")
    if isinstance(entry.get("auth"), str) and entry["auth"]:
        try:
            name, colon, secret = base64.b64decode(entry["auth"], validate=True).decode(
            ).partition(":")
        except (ValueError, UnicodeDecodeError):
            colon = ""
        if not colon:
            raise AuthError(f"the auth entry for {key} is not base64 of user:password")
        return Credentials(name, secret, token if isinstance(token, str) else None)
    user, password = entry.get("username"), entry.get("password")
    if isinstance(user, str) and user:
        return Credentials(user, password if isinstance(password, str) else "",
                           token if isinstance(token, str) else None)
    if isinstance(token, str) and token:
        return Credentials("<token>", "", token)
    return None


def _from_helper(helper: str, server: str) -> Credentials | None:
    """docker's credential-helper protocol: ``docker-credential-NAME get``, the server on
    stdin, ``{"Username": ..., "Secret": ...}`` on stdout."""
    try:
        done = subprocess.run([f"docker-credential-{helper}", "get"], input=server.encode(),
                              capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        return None
    user, secret = answer.get("Username"), answer.get("Secret")
    if not isinstance(secret, str) or not secret:
        return None
    if user == "<token>":
        return Credentials("<token>", "", secret)
    return Credentials(str(user or ""), secret)
