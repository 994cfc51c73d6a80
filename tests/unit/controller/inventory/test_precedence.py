"""``resolve``: each host's variables in Ansible's documented precedence, lowest first:
inventory-file group vars (all, then by depth, priority, name), group_vars/ files
(all, then the same order), inventory-file host vars, host_vars/ files."""

from __future__ import annotations

from controller.inventory import load_inventory
from tests.unit.controller.inventory.conftest import Load, Write


def test_all_parent_child_host(load: Load) -> None:
    inventory = load("[child]\nh level=host\nother\n[parent:children]\nchild\n"
                     "[child:vars]\nlevel=child\n[parent:vars]\nlevel=parent\nonly=parent\n"
                     "[all:vars]\nlevel=all\nbase=all\n")
    assert inventory.hosts["h"].vars == {"level": "host", "base": "all", "only": "parent"}
    assert inventory.hosts["other"].vars["level"] == "child"
    assert inventory.hosts["other"].groups == ("all", "parent", "child")


def test_depth_is_the_longest_path_from_all(load: Load) -> None:
    inventory = load("[a:children]\nb\n[b:children]\nc\n[x:children]\nc\n[c]\nh\n"
                     "[a:vars]\nv=a\n[b:vars]\nv=b\n[c:vars]\nv=c\n[x:vars]\nv=x\nw=x\n"
                     "[b:vars]\nw=b\n")
    assert [inventory.groups[g].depth for g in ("all", "a", "b", "c", "x")] == [0, 1, 2, 3, 1]
    assert inventory.hosts["h"].groups == ("all", "a", "x", "b", "c")
    assert inventory.hosts["h"].vars == {"v": "c", "w": "b"}


def test_siblings_by_priority_then_name(load: Load) -> None:
    inventory = load(
        "all:\n  children:\n"
        "    alpha: {hosts: {h: }, vars: {v: alpha}}\n"
        "    beta: {hosts: {h: }, vars: {v: beta, ansible_group_priority: 0}}\n"
        "    gamma: {hosts: {h: }, vars: {v: gamma}}\n", "inv.yml")
    assert inventory.hosts["h"].groups == ("all", "beta", "alpha", "gamma")
    assert inventory.hosts["h"].vars == {"v": "gamma"}


def test_any_group_vars_file_beats_any_inventory_group_var(write: Write) -> None:
    path = write("hosts", "[child]\nh\n[child:vars]\nv=child-inventory\n")
    write("group_vars/all.yml", "v: all-file\n")
    assert load_inventory(path).hosts["h"].vars == {"v": "all-file"}
    write("group_vars/child.yml", "v: child-file\n")
    assert load_inventory(path).hosts["h"].vars == {"v": "child-file"}


def test_host_vars_files_beat_inline_host_vars(write: Write) -> None:
    path = write("hosts", "h v=inline w=inline\n")
    write("group_vars/all.yml", "w: all-file\n")
    write("host_vars/h.yml", "v: file\n")
    assert load_inventory(path).hosts["h"].vars == {"v": "file", "w": "inline"}


def test_priority_only_from_the_inventory_file(write: Write) -> None:
    path = write("inv.yml", "all:\n  children:\n    a: {hosts: {h: }}\n    b: {hosts: {h: }}\n")
    write("group_vars/a.yml", "v: a\nansible_group_priority: 99\n")
    write("group_vars/b.yml", "v: b\n")
    inventory = load_inventory(path)
    assert inventory.groups["a"].priority == 1
    assert inventory.hosts["h"].vars == {"v": "b", "ansible_group_priority": 99}


def test_group_vars_combine_file_and_inventory(write: Write) -> None:
    path = write("hosts", "[g]\nh\n[g:vars]\na=1\nb=1\n")
    write("group_vars/g.yml", "b: 2\n")
    assert load_inventory(path).groups["g"].vars == {"a": 1, "b": 2}


def test_dictionaries_are_replaced_not_merged(write: Write) -> None:
    path = write("hosts", "[g]\nh d=\"{'x': 1}\"\n[g:vars]\nd={'x': 0, 'y': 0}\n")
    assert load_inventory(path).hosts["h"].vars == {"d": {"x": 1}}


def test_host_declared_in_ungrouped_and_below_it_loses_ungrouped(load: Load) -> None:
    """Ansible takes such a host out of ``ungrouped`` and with it ``ungrouped``'s
    variables, though the host is still in a child of ``ungrouped``."""
    inventory = load("ungrouped:\n  vars: {who: ungrouped}\n  hosts: {both: }\n"
                     "  children:\n    sub:\n      hosts: {both: , only: }\n"
                     "lb:\n  vars: {who: lb}\n  children: {sub: }\n", "inv.yml")
    assert inventory.hosts["only"].vars == {"who": "ungrouped"}
    assert inventory.hosts["both"].vars == {"who": "lb"}
    assert inventory.hosts["both"].groups == ("all", "lb", "sub")
    assert inventory.groups["ungrouped"].hosts == ()
