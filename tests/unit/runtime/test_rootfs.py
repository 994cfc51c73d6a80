"""Root filesystems over real overlayfs mounts, and the copy fallback checked against them.
Runs as root (mount, chown, trusted xattrs), as the agent does. Every test destroys
what it mounted, in a finally."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.runtime.rootfs import Rootfs, RootfsError, destroy, overlay_supported, prepare, release
from agent.store.unpack import unpack_layer
from tests.unit.store.hostile_layers import Entry, dir_, file, hardlink, symlink, tar, xattrs

CAP = struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0).decode("latin-1")
Listing = dict[str, tuple[object, ...]]


def fifo(name: str) -> Entry:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.FIFOTYPE, 0o640
    return info, b""


LAYERS: list[list[Entry]] = [
    [dir_("etc"), file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"), dir_("bin"),
     xattrs(file("bin/su", b"su binary", 0o4755, uid=33, gid=33),
            security_capability=CAP, user_note="kept"),
     hardlink("bin/su-link", "bin/su"), dir_("opt"), file("opt/a", b"a"), file("opt/b", b"b"),
     file("gone", b"to be whited out"), dir_("usr"), dir_("usr/lib"),
     symlink("usr/lib/passwd", "../../etc/passwd"), dir_("var"), dir_("var/cache"),
     file("var/cache/x", b"x"), fifo("run-fifo"), dir_("secret", 0o700, uid=5, gid=6)],
    [file(".wh.gone"), dir_("opt"), file("opt/.wh..wh..opq"), file("opt/c", b"c"),
     file("etc/passwd", b"root:x:0:0::/root:/bin/ash\n"), file("etc/new", b"new", 0o600)],
    [symlink("var/cache", "/tmp"), dir_("usr/lib", 0o711), file("usr/lib/.wh.passwd"),
     file("usr/lib/fresh", b"fresh")],
]


def make_layers(top: Path, layers: list[list[Entry]]) -> list[Path]:
    made = []
    for index, entries in enumerate(layers):
        dest = top / f"{index:03d}-{hashlib.sha256(str(index).encode()).hexdigest()}"
        dest.mkdir(parents=True)
        unpack_layer(io.BytesIO(tar(*entries)), dest)
        made.append(dest)
    return made


def listing(root: Path) -> Listing:
    """Every entry below ``root``: type, mode, owner, links, content or target, xattrs."""
    found: Listing = {}
    for top, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(top, name)
            st = path.lstat()
            if stat.S_ISREG(st.st_mode):
                body: object = (path.read_bytes(), st.st_nlink)
            elif stat.S_ISLNK(st.st_mode):
                body = path.readlink()
            else:
                body = None
            attrs = () if stat.S_ISLNK(st.st_mode) else tuple(
                sorted((k, os.getxattr(path, k)) for k in os.listxattr(path)
                       if not k.startswith("trusted.")))
            found[str(path.relative_to(root))] = (stat.S_IFMT(st.st_mode),
                                                  stat.S_IMODE(st.st_mode), st.st_uid,
                                                  st.st_gid, body, attrs)
    return found


def mounted_below(path: Path) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


@pytest.fixture
def layers(tmp_path: Path) -> list[Path]:
    return make_layers(tmp_path / "layers", LAYERS)


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "containers" / "c1"
    try:
        yield directory
    finally:
        destroy(directory)


def test_overlay_is_supported_here() -> None:
    assert overlay_supported()  # the unit tests run as root on a kernel with overlayfs


def test_overlay_shows_what_the_oci_spec_says(container: Path, layers: list[Path]) -> None:
    rootfs = prepare(container, layers, overlay=True)
    assert rootfs == Rootfs(container / "rootfs", container / "upper", overlay=True)
    assert mounted_below(container) == [str(rootfs.path)]
    seen = listing(rootfs.path)
    assert "gone" not in seen                                   # whiteout
    assert sorted(p for p in seen if p.startswith("opt/")) == ["opt/c"]  # opaque dir
    assert seen["etc/passwd"][4] == (b"root:x:0:0::/root:/bin/ash\n", 1)
    su = seen["bin/su"]
    assert su[:4] == (stat.S_IFREG, 0o4755, 33, 33)
    assert su[5] == (("security.capability", CAP.encode("latin-1")), ("user.note", b"kept"))
    assert su[4] == seen["bin/su-link"][4] == (b"su binary", 2)
    assert seen["var/cache"][4] == Path("/tmp")                 # a link over a lower dir
    assert "var/cache/x" not in seen
    assert sorted(p for p in seen if p.startswith("usr/")) == ["usr/lib", "usr/lib/fresh"]
    assert seen["usr/lib"][1] == 0o711
    assert seen["secret"][:4] == (stat.S_IFDIR, 0o700, 5, 6)
    assert stat.S_ISFIFO(seen["run-fifo"][0])  # type: ignore[arg-type]


def test_writes_land_in_upper_only(container: Path, layers: list[Path]) -> None:
    before = [listing(layer) for layer in layers]
    rootfs = prepare(container, layers, overlay=True)
    (rootfs.path / "etc" / "passwd").write_text("changed\n")
    (rootfs.path / "etc" / "new").unlink()
    (rootfs.path / "made").write_text("made")
    assert [listing(layer) for layer in layers] == before
    assert (rootfs.upper / "made").read_text() == "made"
    assert (rootfs.upper / "etc" / "passwd").read_text() == "changed\n"
    assert (rootfs.upper / "etc" / "new").lstat().st_rdev == 0  # overlayfs's whiteout

    release(rootfs)  # stop, then start again: the changes are still there
    assert mounted_below(container) == []
    again = prepare(container, layers, overlay=True)
    assert (again.path / "made").read_text() == "made"
    assert not (again.path / "etc" / "new").exists()


def test_sixty_four_layers_mount(container: Path, tmp_path: Path) -> None:
    many = make_layers(tmp_path / ("many-layers-with-a-long-directory-name" * 2),
                       [[file(f"f{i}", b"%d" % i), file("top", b"%d" % i)] for i in range(64)])
    assert len(":".join(map(str, many))) > 4096  # absolute lowerdirs would not fit a page
    rootfs = prepare(container, many)
    assert rootfs.overlay
    assert (rootfs.path / "top").read_text() == "63"
    assert sorted(p.name for p in rootfs.path.iterdir()) == sorted(
        ["top", *(f"f{i}" for i in range(64))])


def test_copy_gives_the_same_tree(tmp_path: Path, layers: list[Path]) -> None:
    merged, copied = tmp_path / "merged", tmp_path / "copied"
    try:
        over = prepare(merged, layers, overlay=True)
        copy = prepare(copied, layers, overlay=False)
        assert copy == Rootfs(copied / "rootfs", copied / "rootfs", overlay=False)
        assert mounted_below(copied) == []
        expected = listing(over.path)
        assert listing(copy.path) == expected
        assert len(expected) >= 15
    finally:
        destroy(merged)
        destroy(copied)


def test_prepare_twice_is_a_no_op(container: Path, layers: list[Path]) -> None:
    first = prepare(container, layers)
    assert prepare(container, layers) == first
    assert mounted_below(container) == [str(first.path)]


def test_a_copy_is_built_once_and_a_half_built_one_again(container: Path,
                                                          layers: list[Path]) -> None:
    rootfs = prepare(container, layers, overlay=False)
    (rootfs.path / "changed").write_text("kept")
    assert prepare(container, layers) == rootfs  # None: the kind it was made with
    assert (rootfs.path / "changed").exists()
    (container / "rootfs.done").unlink()  # as if the agent died while copying
    prepare(container, layers, overlay=False)
    assert not (rootfs.path / "changed").exists()
    assert "bin/su" in listing(rootfs.path)
    with pytest.raises(RootfsError):
        prepare(container, layers[:1], overlay=False)  # a copy of other layers


def test_destroy_unmounts_everything_and_spares_volumes(tmp_path: Path,
                                                        layers: list[Path]) -> None:
    import ctypes

    container = tmp_path / "c"
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "data").write_text("precious")
    rootfs = prepare(container, layers)
    target = rootfs.path / "mnt"
    target.mkdir()
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.mount(bytes(volume), bytes(target), None, 4096, None) == 0  # MS_BIND
    try:
        assert len(mounted_below(container)) == 2
    finally:
        destroy(container)
    assert mounted_below(container) == []
    assert not container.exists()
    assert (volume / "data").read_text() == "precious"


def test_release_of_a_busy_root_is_lazy(container: Path, layers: list[Path]) -> None:
    rootfs = prepare(container, layers)
    fd = os.open(rootfs.path / "etc" / "passwd", os.O_RDONLY)  # keeps the mount busy
    try:
        release(rootfs)
        assert mounted_below(container) == []
        assert os.read(fd, 4) == b"root"
    finally:
        os.close(fd)
