"""Renderers: Ansible-like text as events arrive, or one JSON document at the end."""

from __future__ import annotations

import json
import sys
from typing import Protocol, TextIO

from agent.model import Event
from controller.report.recap import Recap

_LABEL = {"ok": "ok", "changed": "changed", "failed": "failed"}


class Renderer(Protocol):
    def start(self, title: str, check: bool) -> None: ...

    def event(self, event: Event) -> None: ...

    def finish(self, recap: Recap) -> None: ...


class TextRenderer:
    def __init__(self, out: TextIO = sys.stdout, show_diff: bool = False) -> None:
        self.out, self.show_diff = out, show_diff

    def start(self, title: str, check: bool) -> None:
        mode = " (check mode: nothing will be changed)" if check else ""
        self.out.write(f"PLAY [{title}]{mode} {'*' * 40}\n")

    def event(self, event: Event) -> None:
        head = f"{_LABEL[event.status]}: [{event.host}] {event.kind}/{event.name}"
        text = event.error if event.failed and event.error else event.summary
        self.out.write(f"{head}: {text}\n" if text else f"{head}\n")
        for key, value in event.details.items():
            self.out.write(f"    {key}: {value}\n")
        if self.show_diff and event.diff:
            self.out.write(event.diff if event.diff.endswith("\n") else event.diff + "\n")
        self.out.flush()

    def finish(self, recap: Recap) -> None:
        self.out.write(f"\nPLAY RECAP {'*' * 60}\n")
        for host, tally in recap.hosts.items():
            self.out.write(f"{host:<26} : ok={tally.ok:<4} changed={tally.changed:<4} "
                           f"failed={tally.failed:<4} unreachable={tally.unreachable:<4}\n")
        self.out.flush()


class JsonRenderer:
    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.check = False

    def start(self, title: str, check: bool) -> None:  # noqa: ARG002 - Renderer's signature
        self.check = check

    def event(self, event: Event) -> None:
        """Everything is written at the end, as one document."""

    def finish(self, recap: Recap) -> None:
        document = {
            "check": self.check,
            "exit_code": recap.exit_code,
            "hosts": {
                host: {"ok": t.ok, "changed": t.changed, "failed": t.failed,
                       "unreachable": t.unreachable,
                       "events": [{"status": e.status,
                                   **e.model_dump(mode="json", exclude_defaults=True)}
                                  for e in t.events]}
                for host, t in recap.hosts.items()
            },
        }
        json.dump(document, self.out, indent=2)
        self.out.write("\n")
        self.out.flush()
