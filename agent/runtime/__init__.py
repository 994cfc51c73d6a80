"""pyprov's own container runtime: the spec (image config merged with the manifest), root
filesystems over the store's layers, cgroups, namespaces, network and the monitor."""
