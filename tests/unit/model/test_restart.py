"""``restart:``: docker's ``no | always | on-failure[:N] | unless-stopped``."""

from __future__ import annotations

import re

import pytest

from agent.model.syntax.errors import SyntaxProblem
from agent.model.syntax.restart import RestartPolicy, parse_restart


@pytest.mark.parametrize(
    ("value", "name", "retries", "text"),
    [
        ("no", "no", None, "no"),
        (False, "no", None, "no"),  # YAML 1.1 reads an unquoted no as false
        ("always", "always", None, "always"),
        ("unless-stopped", "unless-stopped", None, "unless-stopped"),
        ("on-failure", "on-failure", None, "on-failure"),
        ("on-failure:3", "on-failure", 3, "on-failure:3"),
        ("on-failure:0", "on-failure", 0, "on-failure:0"),
    ],
)
def test_policies(value: object, name: str, retries: int | None, text: str) -> None:
    policy = parse_restart(value)
    assert (policy.name, policy.max_retries, str(policy)) == (name, retries, text)
    assert parse_restart(str(policy)) == policy


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("on-failure:x", "retry count must be 0 to"),
        ("on-failure:-1", "retry count must be 0 to"),
        ("on-failure:", "retry count must be 0 to"),
        ("on-failure:٣", "retry count must be 0 to"),  # not an ASCII number
        ("always:3", "only on-failure takes a :N"),
        ("no:1", "only on-failure takes a :N"),
        ("sometimes", "is not \"no\""),
        ("Always", "is not \"no\""),
        ("", "is not \"no\""),
        (True, "restart must be"),
        (None, "restart must be"),
        (3, "restart must be"),
    ],
)
def test_rejected(value: object, message: str) -> None:
    with pytest.raises(SyntaxProblem, match=re.escape(message)):
        parse_restart(value)


def test_policy_text_is_docker_syntax() -> None:
    assert str(RestartPolicy("on-failure", 5)) == "on-failure:5"
