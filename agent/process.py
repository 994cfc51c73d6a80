"""Process set-up shared by the agent's entry points."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from agent.model.constants import BUILD_FILE


def build_id() -> str:
    """The bootstrap build of the installation ("" outside a bootstrapped venv)."""
    try:
        return (Path(sys.prefix) / BUILD_FILE).read_text().strip()
    except OSError:
        return ""


def leave_for_callers_directory() -> None:
    """`pyprov save -o out.tar`: the controller leaves the operator's directory before it
    starts the agent (-I keeps it off sys.path anyway); relative paths mean that one."""
    cwd = os.environ.pop("PYPROV_CWD", None)
    if cwd and Path(cwd).is_dir():
        os.chdir(cwd)
