"""WWW-Authenticate challenges as registries send them (RFC 7235 syntax)."""

from __future__ import annotations

from agent.registry.auth import parse_challenges


def test_docker_hubs_bearer_challenge() -> None:
    [challenge] = parse_challenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull"')
    assert challenge.scheme == "bearer"
    assert challenge.params == {"realm": "https://auth.docker.io/token",
                                "service": "registry.docker.io",
                                "scope": "repository:library/busybox:pull"}


def test_several_challenges_quoted_commas_escapes_and_bare_tokens() -> None:
    found = parse_challenges(
        'Basic realm="Registry Realm, with comma", Bearer realm="https://a/t?x=1",'
        'service=plain, scope="a:b:pull,push" , error="invalid_token", note="say \\"hi\\""')
    assert [c.scheme for c in found] == ["basic", "bearer"]
    assert found[0].params == {"realm": "Registry Realm, with comma"}
    assert found[1].params["service"] == "plain"
    assert found[1].params["scope"] == "a:b:pull,push"
    assert found[1].params["note"] == 'say "hi"'


def test_garbage_yields_no_usable_challenge() -> None:
    assert all(not c.params for c in parse_challenges(",,,  ="))
    assert parse_challenges("") == []
