"""Reading inventory and variable files: JSON first, then YAML (``yaml.safe_load``).

JSON first, as Ansible's loader does, so a ``.json`` file means exactly what JSON
says. YAML is loaded with PyYAML's safe loader, libyaml's when it is there as
Ansible does (the two parsers disagree on corner cases such as ``{a:, b:}``, which
only the pure-Python one accepts). Ansible's own tags (``!vault``, ``!unsafe``) and
Python tags are errors, never code; a vault-encrypted file is refused by name
rather than read as one long string.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from controller.inventory.errors import InventoryError

_VAULT_HEADER = b"$ANSIBLE_VAULT;"
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InventoryError(f"cannot read: {exc.strerror or exc}", str(path)) from None


def refuse_vault(data: bytes, file: str) -> None:
    if data.lstrip().startswith(_VAULT_HEADER):
        raise InventoryError("vault-encrypted files are not supported", file)


def load_data(data: bytes, file: str) -> Any:
    """The value a JSON or YAML file holds (``None`` for an empty file)."""
    refuse_vault(data, file)
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise InventoryError("not UTF-8 text", file, data[:exc.start].count(b"\n") + 1) from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise InventoryError(f"invalid YAML: {reason}", file,
                             mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise InventoryError(f"invalid YAML: {exc}", file) from None
    except RecursionError:
        raise InventoryError("invalid YAML: nested too deeply", file) from None
