"""The agent on its own: ``pyprov agent run``, a reconcile loop over the stored desired state.

    schedule.py   when the next pass is due: interval + splay, backoff while passes fail
    stored.py     the stored desired state, validated; the last good generation kept
    passes.py     one pass (enforce, report or check): the same reconcile as ``agent apply``
    status.py     what ``agent status`` shows, and the Prometheus textfile
    runner.py     the process: the resident server's socket, the passes (forked), signals
    install.py    ``agent setup``: the systemd unit and the drift cron entry (bootstrap)
"""
