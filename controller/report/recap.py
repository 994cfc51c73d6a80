"""Per-host tallies and the fleet's exit code."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.model import Event, exit_code


@dataclass
class HostTally:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    events: list[Event] = field(default_factory=list)

    changed_host: bool = False  # some change was made, even by a resource that then failed

    def add(self, event: Event) -> None:
        self.events.append(event)
        self.changed_host |= event.changed
        if event.status == "ok":
            self.ok += 1
        elif event.status == "changed":
            self.changed += 1
        else:
            self.failed += 1


@dataclass
class Recap:
    hosts: dict[str, HostTally] = field(default_factory=dict)

    def host(self, name: str) -> HostTally:
        return self.hosts.setdefault(name, HostTally())

    @property
    def exit_code(self) -> int:
        changed = any(t.changed_host for t in self.hosts.values())
        failed = any(t.failed or t.unreachable for t in self.hosts.values())
        return exit_code(changed, failed)
