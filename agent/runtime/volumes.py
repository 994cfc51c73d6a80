"""A container's volumes, resolved once at creation into the bind mounts its sandbox makes.

- Bind mounts (``/abs/host:/ctr[:ro]``): the host directory is created when missing, as
  the seeds' ``docker run -v`` does; a host path with a symbolic link anywhere on it is
  refused (a container that can write below a volume could plant one and reach, through
  the next container, any host directory).
- Named volumes (``data:/ctr``) live in ``STATE/volumes/<name>/_data``; anonymous ones
  (a bare ``/ctr``, or an image ``VOLUME``) get a random name and belong to their
  container. A volume created empty receives the image's content at its target, owner
  and mode included (docker's copy-up: a ``mysql`` volume starts as the image made it).
- ``volumes_from``: the mounts of another container, read-only if asked.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import PyprovError
from agent.runtime.inroot import InRootError, resolve
from agent.runtime.sandbox import BindMount


class VolumeError(PyprovError):
    """A volume cannot be used as asked."""


@dataclass
class ResolvedVolumes:
    mounts: list[BindMount] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # anonymous volumes to remove with it

    def as_records(self) -> list[dict[str, Any]]:
        return [asdict(mount) for mount in self.mounts]


def check_host_path(path: str, *, create: bool) -> None:
    """Refuse a relative path or one with a link on it; make missing directories."""
    if not path.startswith("/"):
        raise VolumeError(f"volume source {path!r} must be an absolute host path")
    current = Path("/")
    for part in Path(path).parts[1:]:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            if not create:
                raise VolumeError(f"volume source {path} does not exist") from None
            current.mkdir(0o755)
            continue
        if stat.S_ISLNK(mode):
            raise VolumeError(f"volume source {path}: {current} is a symbolic link (to "
                              f"{current.readlink()}); give the real path")


class Volumes:
    def __init__(self, root: Path) -> None:
        self.root = root  # STATE/volumes

    def data_dir(self, name: str) -> Path:
        return self.root / name / "_data"

    def ensure(self, name: str) -> tuple[Path, bool]:
        """The volume's data dir, and whether it was just made (empty: copy-up due)."""
        data = self.data_dir(name)
        if data.is_dir():
            return data, False
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        data.parent.mkdir(mode=0o755, exist_ok=True)
        data.mkdir(mode=0o755, exist_ok=True)
        return data, True

    def remove(self, name: str) -> None:
        shutil.rmtree(self.root / name, ignore_errors=True)

    def resolve(self, specs: list[str], anonymous: list[str], rootfs: Path,
                inherited: list[BindMount], reuse: dict[str, str]) -> ResolvedVolumes:
        """Bind mounts for the spec's volumes, the image's anonymous ones, and those
        inherited through ``volumes_from`` (a target named twice: the spec's wins).
        ``reuse``: target -> anonymous volume of the container this one replaces, kept
        as compose keeps them (a recreated ``mysql`` keeps its data)."""
        from agent.model.syntax.volumes import VolumeMount  # the one -v parser (pydantic)

        resolved = ResolvedVolumes()
        taken: set[str] = set()
        for text in specs:
            mount = VolumeMount.model_validate(text)
            taken.add(mount.target)
            if mount.type == "bind" and mount.source is not None:
                check_host_path(mount.source, create=True)
                resolved.mounts.append(BindMount(mount.source, mount.target, mount.read_only))
                continue
            name = mount.source or self._anonymous(resolved, mount.target, reuse)
            resolved.mounts.append(BindMount(str(self._fill(name, rootfs, mount.target)),
                                             mount.target, mount.read_only))
        for declared in anonymous:
            target = "/" + declared.strip("/")
            if target in taken or target == "/":
                continue
            taken.add(target)
            name = self._anonymous(resolved, target, reuse)
            resolved.mounts.append(BindMount(str(self._fill(name, rootfs, target)), target))
        for bound in inherited:
            if bound.target not in taken:
                taken.add(bound.target)
                resolved.mounts.append(bound)
        return resolved

    def _anonymous(self, resolved: ResolvedVolumes, target: str,
                   reuse: dict[str, str]) -> str:
        if target in reuse and self.data_dir(reuse[target]).is_dir():
            resolved.created.append(reuse[target])
            return reuse[target]
        name = secrets.token_hex(32)
        resolved.created.append(name)
        return name

    def _fill(self, name: str, rootfs: Path, target: str) -> Path:
        data, new = self.ensure(name)
        if new:
            try:
                source = resolve(rootfs, target)
            except InRootError as exc:
                raise VolumeError(f"volume {target}: {exc}") from exc
            if source.is_dir() and not source.is_symlink():
                copy_up(source, data)
        return data


def copy_up(source: Path, target: Path) -> None:
    """The image's directory into a new volume: content, owners, modes; links as links."""
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    for directory, dirs, files in os.walk(source):
        relative = Path(directory).relative_to(source)
        for name in (".", *dirs, *files):
            src = Path(directory) / name
            st = os.lstat(src)
            dst = target / relative / name
            os.lchown(dst, st.st_uid, st.st_gid)
            if not stat.S_ISLNK(st.st_mode):
                dst.chmod(stat.S_IMODE(st.st_mode))
