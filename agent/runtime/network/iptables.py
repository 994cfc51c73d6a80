"""The ``iptables`` command line, whichever backend the host has (nf_tables or legacy).

pyprov drives the CLI rather than nft directly because a host's filter policy lives in
the iptables tables (docker sets FORWARD to DROP there): an accept in a table of
pyprov's own would not override it. The same binary docker uses is the one used here,
so both see one rule set. Batches go through ``iptables-restore --noflush``, which
applies a table's changes at once (all or nothing).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agent.runtime.network.errors import FirewallError, FirewallUnavailable

_SEARCH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
_PLAIN = re.compile(r"[A-Za-z0-9_.:/!,+=@%-]+\Z")
TIMEOUT = 60.0

Rule = tuple[str, ...]  # a rule's spec, without ``-A CHAIN``


@dataclass(frozen=True)
class ListedRule:
    chain: str
    spec: Rule


@dataclass(frozen=True)
class Iptables:
    binary: str
    restore: str
    backend: str  # "nf_tables" or "legacy", as ``iptables --version`` says

    @classmethod
    def detect(cls, search: str = _SEARCH) -> Iptables:
        """The host's iptables (``search``: where to look, PATH plus the sbin dirs)."""
        binary = shutil.which("iptables", path=search)
        restore = shutil.which("iptables-restore", path=search)
        if binary is None or restore is None:
            nft = shutil.which("nft", path=search)
            raise FirewallUnavailable(
                "neither iptables nor iptables-restore is installed (Debian: apt-get install "
                "iptables, nf_tables or legacy backend)"
                + (f"; {nft} alone is not supported" if nft else ""))
        version = _run([binary, "--version"])
        match = re.search(r"\((nf_tables|legacy)\)", version)
        return cls(binary, restore, match.group(1) if match else "legacy")

    def run(self, table: str, *args: str) -> str:
        return _run([self.binary, "-w", "-t", table, *args])

    def check(self, table: str, chain: str, spec: Rule) -> bool:
        """Whether ``spec`` is in ``chain`` (``iptables -C``: the kernel's comparison,
        immune to the reordering ``-S`` prints)."""
        done = subprocess.run([self.binary, "-w", "-t", table, "-C", chain, *spec],
                              capture_output=True, text=True, check=False, timeout=TIMEOUT)
        if done.returncode == 0:
            return True
        if done.returncode == 1:
            return False
        raise FirewallError(f"iptables -t {table} -C {chain}", done.returncode, done.stderr)

    def listing(self, table: str) -> tuple[set[str], list[ListedRule]]:
        """The table's chains and its rules as ``-S`` prints them."""
        chains: set[str] = set()
        rules = []
        for line in self.run(table, "-S").splitlines():
            words = shlex.split(line)
            if len(words) >= 2 and words[0] in ("-N", "-P"):
                chains.add(words[1])
            elif len(words) >= 2 and words[0] == "-A":
                rules.append(ListedRule(words[1], tuple(words[2:])))
        return chains, rules

    def apply(self, batches: Mapping[str, Sequence[str]]) -> None:
        """Apply ``{table: ["-A CHAIN ...", "-D CHAIN ..."]}`` with one restore per call;
        each table's lines take effect together or not at all."""
        text = "".join(f"*{table}\n" + "".join(f"{line}\n" for line in lines) + "COMMIT\n"
                       for table, lines in batches.items() if lines)
        if not text:
            return
        try:
            _run([self.restore, "-w", "--noflush"], stdin=text)
        except FirewallError as error:
            raise FirewallError(f"{self.restore} --noflush", error.code,
                                f"{error.stderr.strip()}; input:\n{text}") from None


def render(action: str, chain: str, spec: Rule) -> str:
    """One ``iptables-restore`` line; it understands double quotes only."""
    words = [action, chain, *spec]
    return " ".join(word if _PLAIN.match(word) else '"' + word.replace('"', '\\"') + '"'
                    for word in words)


def _run(argv: list[str], stdin: str | None = None) -> str:
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False,
                              timeout=TIMEOUT)
    except OSError as error:
        raise FirewallUnavailable(f"cannot run {argv[0]}: {error}") from None
    except subprocess.TimeoutExpired:
        raise FirewallError(shlex.join(argv), -1, f"no answer in {TIMEOUT:.0f}s") from None
    if done.returncode != 0:
        raise FirewallError(shlex.join(argv[:4]), done.returncode, done.stderr)
    return done.stdout
