"""pyprov controller: the operator side.

``manifests`` (YAML -> validated documents, with file:line:column errors),
``transports`` (how the agent is reached: local now, SSH next), ``runner``
(fan-out over hosts), ``report`` (per-host lines, recap, JSON), ``cli``.
The controller never changes a host itself: it only runs the agent's CLI.
"""
