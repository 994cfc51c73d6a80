"""The relay the controller runs on a host instead of starting the agent.

``python -I -S -c RELAY ARGS``: ~10 ms of interpreter, no imports of ours. If an agent
serves the state dir's socket (``pyprov agent serve``), the relay hands it the request
and streams the answer back; otherwise it becomes the agent itself (``exec``), so the
result is the same either way, only cheaper with a resident agent.
"""

from __future__ import annotations

RELAY = r"""
import json, os, socket, sys
args = sys.argv[1:]
state = os.environ.get("PYPROV_STATE_DIR") or "/var/lib/pyprov"
if "--state-dir" in args[:-1]:
    state = args[args.index("--state-dir") + 1]
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    conn.connect(os.path.join(state, "agent.sock"))
except OSError:
    conn.close()
    os.execv(sys.executable, [sys.executable, "-I", "-m", "agent"] + args)
conn.sendall(json.dumps({"argv": args}).encode() + b"\n")
while True:
    chunk = os.read(0, 1 << 16)
    if not chunk:
        break
    conn.sendall(chunk)
conn.shutdown(socket.SHUT_WR)
code = 4
out = sys.stdout.buffer
for line in conn.makefile("rb"):
    if line.startswith(b'{"exit":'):
        code = json.loads(line)["exit"]
        break
    out.write(line)
    out.flush()
sys.exit(code)
"""


def relay_argv(python: str, args: list[str]) -> list[str]:
    """The command that runs ``pyprov agent ARGS`` on a host, resident agent or not."""
    return [python, "-I", "-S", "-c", RELAY, *args]
