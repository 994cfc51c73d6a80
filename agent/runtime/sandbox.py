"""Starts a container's init isolated: new mount, pid, uts, ipc (and network) namespaces,
pivot_root into its rootfs, a minimal /dev, /proc, /sys read-only, volumes, hostname,
user, Docker's default capabilities, no_new_privs, and nothing of the caller's open.

Runs inside the monitor (standard library, ctypes and pyprov's in-root resolution only).
Two forks, as runc's ``nsexec`` does: the *launcher* joins the container's cgroup and
network namespace and unshares the others; a pid namespace applies to children, so it
forks the *init* (pid 1 inside), reports its pid and exits. The monitor is a child
subreaper (``linux.set_child_subreaper``), so the init is reparented to it and the
monitor waits for it as for any child.

The init builds its root in its own mount namespace, where nothing propagates to the
host. Volume targets are opened inside the root (``openat2(RESOLVE_IN_ROOT)`` or the
fd walk) and mounted through ``/proc/self/fd``, so a link in the image (or one a
container planted in a shared volume) cannot steer a mount out of the root; a volume
source must not be a link either. Errors before ``execve`` travel back over a CLOEXEC
pipe (as ``subprocess`` does): the monitor logs the reason and records the exit code
(127 command not found, 126 not executable, 125 the runtime could not set the
container up), never a guess.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path

from agent.runtime import linux, ptyrelay
from agent.runtime.inroot import open_in_root, resolve

EXIT_SETUP_FAILED = 125
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
MAX_ERROR = 4096

# Device nodes every container gets (runc's defaults): name -> (major, minor).
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8),
           "urandom": (1, 9), "tty": (5, 0)}
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
             "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
             "ptmx": "pts/ptmx", "core": "/proc/kcore"}
# Docker's masked and read-only paths (moby's oci/defaults.go).
MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

_O_PATH = getattr(os, "O_PATH", 0o10000000)
_PATH = _O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_KERNEL_FS = linux.MS_NOSUID | linux.MS_NOEXEC | linux.MS_NODEV


class LaunchError(OSError):
    """The launcher failed before the container's init existed."""


@dataclass
class BindMount:
    source: str        # absolute host path, checked by the runtime (no link on the way)
    target: str        # absolute container path, resolved inside the root here
    read_only: bool = False


@dataclass
class SandboxConfig:
    rootfs: str
    hostname: str
    uid: int = 0
    gid: int = 0
    groups: list[int] = field(default_factory=list)
    capabilities: int = field(default_factory=lambda: linux.capability_mask(
        linux.DOCKER_DEFAULT_CAPS))
    network: str = "bridge"        # bridge: join ``netns`` | none: a new, empty one | host
    netns: str | None = None
    mounts: list[BindMount] = field(default_factory=list)
    cgroup_procs: list[str] = field(default_factory=list)
    console_fd: int | None = None  # run -t: a socket for the pty master (ptyrelay.py)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> SandboxConfig:
        values = dict(data)
        mounts = values.pop("mounts", [])
        return cls(**values, mounts=[BindMount(**m) for m in mounts])  # type: ignore[arg-type, attr-defined]


@dataclass
class Launched:
    pid: int             # the init, as the host sees it (the monitor's child by now)
    error: str | None    # why it will exit without running the command, if it will


def launch(config: SandboxConfig, argv: list[str], env: dict[str, str], cwd: str, *,
           stdin: int, stdout: int, stderr: int) -> Launched:
    """Start the container's init; returns once it has exec'd the command (or failed)."""
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
    launcher = os.fork()
    if launcher == 0:  # the launcher
        code = EXIT_SETUP_FAILED
        try:
            os.close(err_r)
            os.close(pid_r)
            _enter(config)
            init = os.fork()
            if init == 0:
                _init(config, argv, env, cwd, stdio=(stdin, stdout, stderr), err_w=err_w)
            os.write(pid_w, str(init).encode())
            code = 0
        except BaseException as exc:
            _report(err_w, "cannot create the container", exc)
        finally:
            os._exit(code)
    os.close(err_w)
    os.close(pid_w)
    os.waitpid(launcher, 0)
    with os.fdopen(pid_r, "rb") as pipe:
        pid_text = pipe.read()
    with os.fdopen(err_r, "rb") as pipe:
        error = pipe.read(MAX_ERROR).decode("utf-8", "replace") or None  # EOF at exec
    if not pid_text:
        raise LaunchError(error or "the container launcher died")
    return Launched(int(pid_text), error)


def _enter(config: SandboxConfig) -> None:
    """Launcher: the cgroup and namespaces the init is born into."""
    for procs in config.cgroup_procs:
        Path(procs).write_text(str(os.getpid()))
    flags = (linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC
             | linux.CLONE_NEWPID)
    if config.network == "none":
        flags |= linux.CLONE_NEWNET
    elif config.network == "bridge":
        if not config.netns:
            raise LaunchError("bridge networking without a network namespace")
        netns = os.open(config.netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            linux.setns(netns, linux.CLONE_NEWNET)
        finally:
            os.close(netns)
    linux.unshare(flags)
    if config.network != "host":
        # docker's default since 20.10: any user may bind a port below 1024 inside the
        # container's own network namespace (httpd as www on :80).
        Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").write_text("0")


def _init(config: SandboxConfig, argv: list[str], env: dict[str, str], cwd: str, *,
          stdio: tuple[int, int, int], err_w: int) -> None:
    """The container's pid 1: build the root, drop privileges, exec. Never returns."""
    step = "cannot create the container"
    code = EXIT_SETUP_FAILED
    try:
        os.setsid()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        os.umask(0o022)
        for target, source in enumerate(stdio):
            os.dup2(source, target)
        _build_root(config, cwd)
        linux.sethostname(config.hostname)
        if config.console_fd is not None:
            step = "cannot allocate a terminal"
            _take_console(config)
            step = "cannot create the container"
        os.closerange(3, err_w)
        os.closerange(err_w + 1, 1 << 20)
        linux.limit_capabilities(config.capabilities)
        os.setgroups(config.groups)
        os.setgid(config.gid)
        os.setuid(config.uid)
        linux.set_no_new_privs()
        step = f"cannot change to the working directory {cwd}"
        os.chdir(cwd)
        step = f"cannot run {argv[0]}"
        os.execvpe(argv[0], argv, env)  # noqa: S606
    except BaseException as exc:
        if step.startswith("cannot run") and isinstance(exc, OSError):
            code = EXIT_NOT_FOUND if exc.errno == errno.ENOENT else EXIT_NOT_EXECUTABLE
            if exc.errno == errno.ENOENT:
                exc = OSError(errno.ENOENT, "executable file not found in $PATH")
        _report(err_w, step, exc)
    os._exit(code)


def _take_console(config: SandboxConfig) -> None:
    """``run -t``: a pty of the container's own devpts is its stdio and controlling
    terminal; the master goes to whoever asked, over the console socket."""
    if config.console_fd is None:
        return
    with socket.socket(fileno=config.console_fd) as console:
        slave = ptyrelay.take_terminal(console, config.uid, None)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    os.close(slave)


def _report(err_w: int, step: str, exc: BaseException) -> None:
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if isinstance(exc, OSError) and exc.filename and step.startswith("cannot create"):
        detail = f"{exc.filename}: {detail}"
    with contextlib.suppress(OSError):
        os.write(err_w, f"pyprov: {step}: {detail or type(exc).__name__}".encode()[:MAX_ERROR])


def _build_root(config: SandboxConfig, cwd: str) -> None:
    root = Path(config.rootfs)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    linux.mount(str(root), str(root), None, linux.MS_BIND | linux.MS_REC)
    resolve(root, cwd, create_dirs=True)  # as runc: a missing working dir is made
    proc = resolve(root, "/proc", create_dirs=True)
    linux.mount("proc", str(proc), "proc", _KERNEL_FS)
    _make_dev(resolve(root, "/dev", create_dirs=True))
    sys_dir = str(resolve(root, "/sys", create_dirs=True))
    try:
        linux.mount("sysfs", sys_dir, "sysfs", _KERNEL_FS | linux.MS_RDONLY)
    except OSError:  # host network: sysfs belongs to the host's netns; bind it read-only
        linux.mount("/sys", sys_dir, None, linux.MS_BIND | linux.MS_REC)
        linux.mount(None, sys_dir, None,
                    linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | _KERNEL_FS)
    for volume in config.mounts:
        _bind(root, volume)
    os.chdir(root)
    linux.pivot_root(".", ".")
    linux.umount2(".", linux.MNT_DETACH)
    os.chdir("/")
    _mask_kernel_files()


def _make_dev(dev: Path) -> None:
    linux.mount("tmpfs", str(dev), "tmpfs", linux.MS_NOSUID | linux.MS_STRICTATIME,
                "mode=755,size=65536k")
    for name, (major, minor) in DEVICES.items():
        os.mknod(dev / name, stat.S_IFCHR | 0o666, os.makedev(major, minor))
        (dev / name).chmod(0o666)
    for name, target in DEV_LINKS.items():
        (dev / name).symlink_to(target)
    for name, fstype, flags, data in (
            ("pts", "devpts", linux.MS_NOSUID | linux.MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5"),
            ("shm", "tmpfs", _KERNEL_FS, "mode=1777,size=65536k"),
            ("mqueue", "mqueue", _KERNEL_FS, None)):
        (dev / name).mkdir(0o755)
        linux.mount(fstype, str(dev / name), fstype, flags, data)


def _bind(root: Path, volume: BindMount) -> None:
    source = os.open(volume.source, _PATH)
    try:
        is_dir = stat.S_ISDIR(os.fstat(source).st_mode)
        if stat.S_ISLNK(os.fstat(source).st_mode):
            raise OSError(errno.ELOOP, f"volume source {volume.source} is a symbolic link")
        target = _mount_point(root, volume.target, is_dir)
        try:
            linux.mount(f"/proc/self/fd/{source}", f"/proc/self/fd/{target}", None,
                        linux.MS_BIND | linux.MS_REC)
        finally:
            os.close(target)
    finally:
        os.close(source)
    if volume.read_only:
        mounted = open_in_root(root, volume.target, _O_PATH)  # the new mount's root
        try:
            linux.mount(None, f"/proc/self/fd/{mounted}", None,
                        linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_REC)
        finally:
            os.close(mounted)


def _mount_point(root: Path, target: str, is_dir: bool) -> int:
    """An O_PATH fd of the container path ``target`` (made if missing), inside root."""
    if is_dir:
        resolve(root, target, create_dirs=True)
        return open_in_root(root, target, _O_PATH | os.O_DIRECTORY)
    parent, _, _ = target.rstrip("/").rpartition("/")
    resolve(root, parent or "/", create_dirs=True)
    try:
        return open_in_root(root, target, _O_PATH)
    except OSError as exc:  # InRootError carries the errno, not the subclass
        if exc.errno != errno.ENOENT:
            raise
        os.close(open_in_root(root, target, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644))
        return open_in_root(root, target, _O_PATH)


def _mask_kernel_files() -> None:
    """Inside the new root: hide what docker hides, make read-only what docker does."""
    for path in MASKED_PATHS:
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode):
            linux.mount("tmpfs", path, "tmpfs", linux.MS_RDONLY)
        else:
            linux.mount("/dev/null", path, None, linux.MS_BIND)
    for path in READONLY_PATHS:
        if os.path.lexists(path):
            linux.mount(path, path, None, linux.MS_BIND | linux.MS_REC)
            linux.mount(None, path, None,
                        linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_REC)
