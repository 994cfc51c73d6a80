"""The wheel house: pyprov and its dependencies as wheels for one host Python/platform.

Built once per (pyprov version, requirements, host interpreter) and cached under
``~/.cache/pyprov/wheelhouse``: a fleet of identical hosts costs one build. For the
controller's own interpreter ``pip wheel`` is used; for another Python or platform,
``pip download --only-binary`` fetches the matching wheels (pyprov itself is pure Python).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from controller.errors import ControllerError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PIP_TIMEOUT = 900


@dataclass(frozen=True)
class HostPython:
    """What a host's interpreter is: enough to pick wheels for it."""

    version: str  # "3.11"
    platform: str  # sysconfig.get_platform(), e.g. "linux-x86_64"
    implementation: str  # "cp"

    @classmethod
    def local(cls) -> HostPython:
        name = sys.implementation.name
        return cls(f"{sys.version_info.major}.{sys.version_info.minor}",
                   sysconfig.get_platform(), "cp" if name == "cpython" else name)

    @property
    def key(self) -> str:
        return f"{self.implementation}{self.version.replace('.', '')}-{self.platform}"


PROBE = ("import json, sys, sysconfig; print(json.dumps({'version': '%d.%d' % sys.version_info[:2],"
         " 'platform': sysconfig.get_platform(), 'implementation': sys.implementation.name}))")


def parse_probe(text: str) -> HostPython:
    data = json.loads(text)
    implementation = "cp" if data["implementation"] == "cpython" else data["implementation"]
    return HostPython(data["version"], data["platform"], implementation)


def source_digest() -> str:
    """What the wheel would be built from: pyproject and every module (a few ms)."""
    digest = hashlib.sha256((PROJECT_ROOT / "pyproject.toml").read_bytes())
    for package in ("agent", "controller"):
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pyprov" / "wheelhouse"


def _pip(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          timeout=PIP_TIMEOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise ControllerError(f"building the wheel house failed (pip {args[0]}):\n{tail}")


def build_wheelhouse(target: HostPython, version: str) -> Path:
    """A directory of wheels that installs pyprov ``version`` offline on ``target``."""
    directory = cache_root() / f"{version}-{source_digest()}-{target.key}"
    complete = directory / ".complete"
    if complete.exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    common = ["--disable-pip-version-check", "-q"]
    if target == HostPython.local():
        _pip(["wheel", *common, "--wheel-dir", str(directory), str(PROJECT_ROOT), "pip"])
    else:
        _pip(["wheel", *common, "--no-deps", "--wheel-dir", str(directory), str(PROJECT_ROOT)])
        requirements = [str(p) for p in directory.glob("pyprov-*.whl")]
        platform = target.platform.replace("-", "_").replace(".", "_")
        _pip(["download", *common, "--only-binary=:all:", "--dest", str(directory),
              "--python-version", target.version, "--platform", platform,
              "--platform", f"manylinux2014_{platform.split('_', 1)[-1]}",
              "--implementation", target.implementation, *requirements, "pip"])
    complete.write_text(version)
    return directory


def wheels(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.whl"))


def build_id(directory: Path) -> str:
    """The identity of the pyprov wheel in a wheel house: equal versions, different code
    (a development build) still differ here, so a host gets upgraded."""
    (wheel,) = directory.glob("pyprov-*.whl")
    return hashlib.sha256(wheel.read_bytes()).hexdigest()[:16]
