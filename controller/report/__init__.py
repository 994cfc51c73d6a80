"""Turning agent events into what operators read: per-host lines, a recap, or JSON."""
