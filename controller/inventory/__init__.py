"""Ansible inventories: which hosts exist, their groups, variables and connections.

    load_inventory(path) -> Inventory      INI or YAML file, or a directory of them,
                                           with group_vars/ and host_vars/; None: localhost
    select(inventory, "web:&prod:!web3")   host names, as Ansible's hosts: / --limit
    connection_for(inventory.host(name))   address, port, user, key, ssh|local, python
    to_ansible_list(inventory)             what `ansible-inventory --list` prints

Operators keep the inventories they have, so the rules are Ansible's, checked
against ``ansible-inventory`` in the integration tests; where pyprov differs (an
unparseable source is an error, not a warning; no dynamic inventories) the module
that decides says so. Modules: ``ranges`` (host patterns), ``ini`` and
``yaml_format`` (the two formats) feeding ``builder``; ``vars_dirs``
(group_vars/, host_vars/) and ``resolve`` (precedence) producing ``model``;
``loader`` ties them; ``patterns``, ``connection`` and ``ansible_json`` read the model.
"""

from controller.inventory.ansible_json import dump_ansible_list, to_ansible_list
from controller.inventory.connection import Connection, connection_for
from controller.inventory.errors import InventoryError
from controller.inventory.loader import load_inventory
from controller.inventory.model import Group, Host, Inventory
from controller.inventory.patterns import Selection, match, select

__all__ = ["Connection", "Group", "Host", "Inventory", "InventoryError", "Selection",
           "connection_for", "dump_ansible_list", "load_inventory", "match", "select",
           "to_ansible_list"]
