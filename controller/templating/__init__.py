"""Manifests as Jinja2 templates, rendered per host with Ansible's variable names."""
