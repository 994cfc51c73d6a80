"""pyprov agent: the only code that changes a host.

Sub-packages: ``model`` (the desired-state contract, shared with the controller),
``reconcile`` (observe -> plan -> apply engine), ``resources`` (one package per kind),
``fsutil`` (atomic writes, backups).
"""

__version__ = "0.1.0"
