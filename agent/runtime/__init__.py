"""pyprov's own container runtime, no Docker daemon.

    spec.py       the image config merged with the manifest, and its versioned hash
    engine.py     create / start / stop / remove / restore: what the CLI and resource call
    records.py    one directory per container: its record, state, log
    rootfs.py     overlayfs over the store's layers (a copy without overlayfs)
    volumes.py    bind mounts, named and anonymous volumes, volumes_from
    sandbox.py    the container's init: namespaces, mounts, pivot_root, caps, exec
    monitor.py    one per container: owns the process, logs, restart policy, stop
    zygote.py     forks the monitors (outside the agent, so containers outlive it)
    exec.py, ptyrelay.py, top.py, logs.py   exec -it, terminals, top, logs -f
    network/      bridge, veth, IPAM, NAT, published ports and their loopback proxy
    cgroups/      limits through one driver interface, v1 and v2
    linux.py, inroot.py, passwd.py, procs.py   system calls, in-root paths, users, pids
"""
