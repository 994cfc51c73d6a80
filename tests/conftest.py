"""Shared fixtures: run the real ``pyprov`` CLI as a subprocess, with its own state dir."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


RunPyprov = Callable[..., Result]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def pyprov(state_dir: Path) -> RunPyprov:
    """Run ``pyprov ARGS`` (this interpreter, this checkout) with a private state dir."""

    def run(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> Result:
        full_env = {**os.environ, "PYPROV_STATE_DIR": str(state_dir), **(env or {})}
        done = subprocess.run([sys.executable, "-m", "controller", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=timeout, env=full_env,
                              check=False)
        return Result(done.returncode, done.stdout, done.stderr)

    return run


def write_file(path: Path, text: str | bytes) -> Path:
    """Write ``text`` (or bytes) to ``path``, parents created; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def write_manifest(directory: Path, name: str, text: str) -> Path:
    return write_file(directory / name, text)
