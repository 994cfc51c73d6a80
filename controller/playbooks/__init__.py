"""Playbooks: which manifests go to which hosts, with which variables, in which order."""
