"""docker-like container commands on a host (run, ps, logs, exec, stop, start, restart,
rm, inspect, port, top), over the same runtime as the Container resource."""
