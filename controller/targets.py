"""From an inventory host to the transport that reaches it.

``ansible_connection=local`` (and the implicit localhost) runs the agent under the
controller's own interpreter; every other host is reached over SSH, where the agent
lives in ``pyprov_install_dir`` (default /opt/pyprov), installed by ``pyprov bootstrap``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from controller.inventory import Inventory, connection_for
from controller.transports.base import Transport
from controller.transports.local import LocalTransport
from controller.transports.options import SshOptions

DEFAULT_INSTALL_DIR = "/opt/pyprov"


def agent_python(variables: Mapping[str, Any]) -> str:
    return f"{variables.get('pyprov_install_dir', DEFAULT_INSTALL_DIR)}/bin/python"


def transport_factory(inventory: Inventory,
                      options: SshOptions) -> Callable[[str], Transport]:
    def transport_for(name: str) -> Transport:
        host = inventory.host(name)
        connection = connection_for(host)
        if connection.connection == "local":
            return LocalTransport(name)
        from controller.transports.ssh import SshTransport  # paramiko only when needed
        from controller.transports.ssh_target import SshTarget

        target = SshTarget(name, connection.host,
                           connection.port if "ansible_port" in host.vars
                           or "ansible_ssh_port" in host.vars else None,
                           connection.user, connection.key_file)
        return SshTransport(target, options, agent_python=agent_python(host.vars))
    return transport_for
