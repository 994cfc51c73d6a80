"""Real registries for the tests: Debian's CNCF distribution registry (v2.8) as a process.

Each :class:`Registry` runs ``/usr/bin/docker-registry serve DIR/config.yml`` on
``127.0.0.1`` and a free port, storing blobs under ``DIR/storage`` (filesystem driver,
deletes enabled) and logging to ``DIR/registry.log``; ``DIR`` is a fresh
``pyprov-registry-<pid>-*`` directory in the temp dir (not /dev/shm: the benchmark pushes
hundreds of MB, and a container's /dev/shm is often 64 MB), removed by :meth:`close`.
Variants, by constructor option: plain HTTP (default), TLS (``tls=True``: a throw-away CA
signs a certificate for 127.0.0.1; clients get :attr:`Registry.ca_path`), htpasswd basic
auth (``users={...}``), token auth (``token_server=TokenServer(...)``) and pull-through
cache (``upstream=<a running Registry>``, ``upstream_auth=(user, password)``).

:meth:`stop` ends the process but keeps storage, port and log, so :meth:`start` brings the
same registry back (for "the registry went away" tests); :meth:`close` also removes DIR.
Processes never outlive the session: fixtures close what they start, an ``atexit`` hook
closes the rest, and :func:`reap_stale_registries` kills those of a dead pytest (their
config path names the creator's pid).

Quirks of v2.8 worth knowing: in proxy mode the registry pings the upstream at start and
exits if it does not answer (so the upstream must be running first); pushing to a proxy
is refused (``UNSUPPORTED``); the proxy gives its ``username``/``password`` only to Bearer
token realms (it keys them by realm URL), never to a Basic challenge, so an htpasswd
upstream cannot be mirrored with credentials (refused here with a ValueError); only one
``auth`` backend may be configured.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from tests.registry.certs import make_ca, make_server_cert
from tests.registry.token_server import TokenServer

__all__ = ["REGISTRY_BIN", "Registry", "RegistryError", "check_prerequisites",
           "reap_stale_registries"]

REGISTRY_BIN = Path("/usr/bin/docker-registry")
DIR_PREFIX = "pyprov-registry-"  # then <creator pid>-<random>
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
PORT_ATTEMPTS = 3
# bcrypt's minimum cost: the registry re-hashes the password on every request it gets.
BCRYPT_ROUNDS = 4

_live: set[Registry] = set()  # started, not yet closed (strong refs: atexit closes them)


class RegistryError(RuntimeError):
    """A test registry could not start or stop; the message carries its log."""


def check_prerequisites() -> None:
    """Raise :class:`RegistryError` unless Debian's registry binary is installed."""
    if not os.access(REGISTRY_BIN, os.X_OK):
        raise RegistryError(f"{REGISTRY_BIN} is missing: apt-get install docker-registry")


class Registry:
    """One registry process; see the module doc. Use ``with`` or start()/close()."""

    def __init__(self, *, tls: bool = False, users: Mapping[str, str] | None = None,
                 token_server: TokenServer | None = None, upstream: Registry | None = None,
                 upstream_auth: tuple[str, str] | None = None, name: str = "registry") -> None:
        if users and token_server:
            raise ValueError("the registry takes one auth backend: users or token_server")
        if upstream_auth and upstream is None:
            raise ValueError("upstream_auth without upstream")
        if upstream_auth and upstream is not None and upstream.token_server is None:
            raise ValueError("registry v2.8 proxies send credentials to token realms only: "
                             "give the upstream a token_server, not htpasswd users")
        self.name = name
        self.tls = tls
        self.users: dict[str, str] = dict(users or {})
        self.token_server: TokenServer | None = token_server
        self.upstream: Registry | None = upstream
        self.upstream_auth = upstream_auth
        self.directory: Path | None = None
        self.ca_path: Path | None = None  # TLS only: the CA that signed the server cert
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ life cycle

    def start(self) -> Registry:
        """Run the registry and return once ``GET /v2/`` answers; raise RegistryError."""
        if self.running:
            return self
        check_prerequisites()
        if self.upstream is not None and not self.upstream.running:
            raise RegistryError(f"{self.name}: start the upstream {self.upstream.name} first "
                                "(a v2.8 proxy exits when its upstream does not answer)")
        first = self.directory is None
        if first:
            self._prepare()
            _live.add(self)
        for attempt in range(PORT_ATTEMPTS):
            if first or attempt:
                self.port = _free_port()
                self._write_config()
            self._launch()
            if self._wait_ready():
                return self
            busy = "address already in use" in self.log_text()
            self._kill()
            if not (first and busy):
                break
        raise RegistryError(f"{self.name} did not answer on {self.url}/v2/ within "
                            f"{START_TIMEOUT:.0f}s; log {self.log_path}:\n{self.log_tail()}")

    def stop(self) -> None:
        """End the process (SIGTERM, then SIGKILL); storage, port and log stay."""
        self._kill()

    def close(self) -> None:
        """Stop and remove the directory. Idempotent; raises if a process survived."""
        self._kill()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
        _live.discard(self)
        if self.leftovers():
            raise RegistryError(f"{self.name} teardown left: {', '.join(self.leftovers())}")

    def leftovers(self) -> list[str]:
        found = []
        if self._process is not None and self._process.poll() is None:
            found.append(f"docker-registry pid {self._process.pid}")
        if self.directory is not None and self.directory.exists() and self not in _live:
            found.append(f"directory {self.directory}")
        return found

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Registry {self.name} {self.url if self.port else '(not started)'}>"

    # ------------------------------------------------------------------ queries

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: the registry part of an image reference."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def log_path(self) -> Path:
        return self._dir() / "registry.log"

    @property
    def config_path(self) -> Path:
        return self._dir() / "config.yml"

    @property
    def storage(self) -> Path:
        """The filesystem driver's root (``docker/registry/v2/...`` below it)."""
        return self._dir() / "storage"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(empty log)"

    def ssl_context(self) -> ssl.SSLContext | None:
        """For Python clients: trusts :attr:`ca_path` (TLS), None for plain HTTP."""
        if self.ca_path is None:
            return None
        return ssl.create_default_context(cafile=str(self.ca_path))

    # ------------------------------------------------------------------ internals

    def _dir(self) -> Path:
        if self.directory is None:
            raise RegistryError(f"{self.name} was never started")
        return self.directory

    def _prepare(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-",
                                               dir=tempfile.gettempdir()))
        self.storage.mkdir()
        if self.tls:
            ca = make_ca()
            self.ca_path = ca.write(self.directory / "ca.pem")
            make_server_cert(ca, "127.0.0.1").write(self.directory / "cert.pem",
                                                    self.directory / "key.pem")
        if self.users:
            (self.directory / "htpasswd").write_bytes(b"".join(
                user.encode() + b":" + bcrypt.hashpw(password.encode(),
                                                     bcrypt.gensalt(BCRYPT_ROUNDS)) + b"\n"
                for user, password in self.users.items()))
        if self.token_server is not None:
            self.token_server.write_root_cert(self.directory / "token-root.pem")

    def _write_config(self) -> None:
        directory = self._dir()
        http: dict[str, Any] = {"addr": self.host, "secret": secrets.token_hex(16),
                                "headers": {"X-Content-Type-Options": ["nosniff"]}}
        if self.tls:
            http["tls"] = {"certificate": str(directory / "cert.pem"),
                           "key": str(directory / "key.pem")}
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "fields": {"service": self.name}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage)},
                        "delete": {"enabled": True},
                        "cache": {"blobdescriptor": "inmemory"},
                        "maintenance": {"uploadpurging": {"enabled": False}}},
            "http": http,
            "health": {"storagedriver": {"enabled": False}},
        }
        if self.users:
            config["auth"] = {"htpasswd": {"realm": "pyprov-test",
                                           "path": str(directory / "htpasswd")}}
        if self.token_server is not None:
            config["auth"] = {"token": {"realm": self.token_server.realm,
                                        "service": self.token_server.service,
                                        "issuer": self.token_server.issuer,
                                        "rootcertbundle": str(directory / "token-root.pem")}}
        if self.upstream is not None:
            proxy = {"remoteurl": self.upstream.url}
            if self.upstream_auth is not None:
                proxy["username"], proxy["password"] = self.upstream_auth
            config["proxy"] = proxy
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def _launch(self) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self._dir())}
        if self.upstream is not None and self.upstream.ca_path is not None:
            env["SSL_CERT_FILE"] = str(self.upstream.ca_path)  # Go's trust store override
        with self.log_path.open("ab") as log:
            log.write(f"===== {time.strftime('%H:%M:%S')} start on {self.host}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                [str(REGISTRY_BIN), "serve", str(self.config_path)], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def _wait_ready(self) -> bool:
        """True once ``GET /v2/`` gets any HTTP answer (401 counts); False if it died."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not self.running:
                return False
            if self._answers():
                return True
            time.sleep(0.02)
        return False

    def _answers(self) -> bool:
        connection: http.client.HTTPConnection
        if self.tls:
            connection = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=1,
                                                     context=self.ssl_context())
        else:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            connection.request("GET", "/v2/")
            connection.getresponse().read()
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()
        return True

    def _kill(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


def reap_stale_registries() -> list[str]:
    """Kill registries (and remove directories) of test processes that died before closing.

    Only ``pyprov-registry-<pid>-*`` whose creator pid is gone are touched.
    """
    reaped = []
    pattern = re.compile(rf"/{DIR_PREFIX}(\d+)-[^/]+/config\.yml$")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) < 3 or argv[0] != str(REGISTRY_BIN).encode():
            continue
        match = pattern.search(argv[2].decode(errors="replace"))
        if match and not _alive(int(match.group(1))):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
            reaped.append(f"docker-registry pid {entry.name}")
    for stale in Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"):
        owner = stale.name.removeprefix(DIR_PREFIX).split("-")[0]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(stale, ignore_errors=True)
            reaped.append(f"directory {stale}")
    return reaped


@atexit.register
def _close_all() -> None:
    """The last line of defence: a session that forgot a registry still ends it."""
    for registry in list(_live):
        with contextlib.suppress(RegistryError):
            registry.close()


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _free_port() -> int:
    """A port free right now on 127.0.0.1 (the registry binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

