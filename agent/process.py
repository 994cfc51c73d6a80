"""Process set-up shared by the agent's entry points."""

from __future__ import annotations

import os
from pathlib import Path


def leave_for_callers_directory() -> None:
    """`pyprov save -o out.tar`: the controller leaves the operator's directory before it
    starts the agent (-I keeps it off sys.path anyway); relative paths mean that one."""
    cwd = os.environ.pop("PYPROV_CWD", None)
    if cwd and Path(cwd).is_dir():
        os.chdir(cwd)
