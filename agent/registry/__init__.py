"""The agent's registry client: the OCI distribution API (pull, push, auth, mirrors,
insecure registries), configured from the host's daemon.json as dockerd would be."""
