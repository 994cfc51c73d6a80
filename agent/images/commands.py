"""The image commands' bodies (parsing is in :mod:`agent.images.cli`)."""

from __future__ import annotations

import argparse
import getpass
import json
from typing import TextIO

from agent.errors import AuthError, NotFound, PyprovError
from agent.images.host import client_for, store_for
from agent.model.constants import EXIT_FAILED
from agent.model.syntax.reference import ImageReference, parse_reference
from agent.oci.media import Platform
from agent.registry.credentials import Credentials, CredentialStore
from agent.state import StateDir
from agent.textfmt import ago, human_size, print_table


def ask_password(stdin: TextIO, from_stdin: bool) -> str:
    if from_stdin:
        return stdin.read().rstrip("\n")
    return getpass.getpass("Password: ")


def dumps(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=False)


def dispatch(args: argparse.Namespace, state: StateDir, stdin: TextIO, out: TextIO) -> int:
    handler = {"pull": _pull, "push": _push, "tag": _tag, "images": _images, "rmi": _rmi,
               "inspect": _inspect, "save": _save, "load": _load, "login": _login,
               "logout": _logout, "catalog": _catalog}[args.command]
    return handler(args, state, stdin, out)


def _pull(args: argparse.Namespace, state: StateDir, _: TextIO, out: TextIO) -> int:
    from agent.images.progress import ProgressView
    from agent.images.pull import Puller

    ref = parse_reference(args.name)
    view = ProgressView(out, args.quiet)
    view.say(f"{ref.tag or ref.digest}: Pulling from {ref.repository}" if ref.registry ==
             "docker.io" else f"{ref.tag or ref.digest}: Pulling from {ref.name}")
    puller = Puller(client_for(state, args.daemon_config), store_for(state), progress=view,
                    unpack=not args.no_unpack)
    result = puller.pull(ref, Platform.parse(args.platform) if args.platform else None)
    view.say(f"Digest: {result.resolved}")
    fresh = result.changed or result.downloaded
    view.say(f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'} "
             f"for {ref.familiar}")
    print(str(ref), file=out)
    return 0


def _push(args: argparse.Namespace, state: StateDir, _: TextIO, out: TextIO) -> int:
    from agent.images.progress import ProgressView
    from agent.images.push import push

    view = ProgressView(out, args.quiet)
    ref = parse_reference(args.name)
    view.say(f"The push refers to repository [{ref.name}]")
    result = push(client_for(state, args.daemon_config), store_for(state), args.name, view)
    image = store_for(state).image(str(ref))
    size = image.manifest.size if image else 0
    print(f"{ref.tag or 'latest'}: digest: {result.digest} size: {size}", file=out)
    return 0


def _tag(args: argparse.Namespace, state: StateDir, _: TextIO, __: TextIO) -> int:
    from agent.images.push import tag

    tag(store_for(state), args.source, args.target)
    return 0


def _images(args: argparse.Namespace, state: StateDir, _: TextIO, out: TextIO) -> int:
    store = store_for(state)
    if args.verify:
        from agent.images.gc import verify

        problems = verify(store)
        for problem in problems:
            print(problem, file=out)
        print(f"{len(problems)} problems" if problems else "the store is sound", file=out)
        return EXIT_FAILED if problems else 0
    rows = [("REPOSITORY", "TAG", *(("DIGEST",) if args.digests else ()), "IMAGE ID",
             "CREATED", "SIZE")]
    for image in store.images():
        ref = parse_reference(image.name)
        try:
            manifest, config = store.manifest_of(image), store.config_of(image)
        except (PyprovError, OSError):
            continue  # an interrupted pull: not an image yet
        size = manifest.config.size + sum(layer.size for layer in manifest.layers)
        repository = ref.familiar.rsplit(":", 1)[0] if ref.tag else ref.familiar.split("@")[0]
        rows.append((repository, ref.tag or "<none>",
                     *((image.resolved,) if args.digests else ()),
                     manifest.config.digest.removeprefix("sha256:")[:12],
                     ago(config.created), human_size(size)))
    print_table(rows, out)
    return 0


def _rmi(args: argparse.Namespace, state: StateDir, _: TextIO, out: TextIO) -> int:
    from agent.images.gc import collect
    from agent.runtime.records import ContainerStore

    store = store_for(state)
    users = {record.spec["image_digest"]: record for record in ContainerStore(
        state.containers).all()}
    missing = []
    for name in args.names:
        full = str(parse_reference(name))
        image = store.image(full)
        user = users.get(image.manifest.digest) if image else None
        last_name = image is not None and not any(
            other.manifest.digest == image.manifest.digest and other.name != full
            for other in store.images())
        if user is not None and last_name and not args.force:
            raise PyprovError(f"conflict: unable to remove {name} (must force): container "
                              f"{user.short_id} ({user.name}) is using it")
        if store.remove_image(full):
            print(f"Untagged: {parse_reference(name).familiar}", file=out)
        else:
            missing.append(name)
    done = collect(store, frozenset(users))
    for digest in done.blobs:
        print(f"Deleted: {digest}", file=out)
    if missing:
        raise NotFound(f"no such image: {', '.join(missing)}")
    return 0


def _inspect(args: argparse.Namespace, state: StateDir, _: TextIO, out: TextIO) -> int:
    from agent.images.push import find

    store = store_for(state)
    image = find(store, args.name)
    manifest = json.loads(store.read_blob(image.manifest.digest))
    config = json.loads(store.read_blob(store.manifest_of(image).config.digest))
    print(dumps({"Name": image.name, "Id": store.manifest_of(image).config.digest,
                 "RepoDigests": [f"{parse_reference(image.name).name}@{image.resolved}"],
                 "Manifest": manifest, "Config": config}), file=out)
    return 0


def _save(args: argparse.Namespace, state: StateDir, _: TextIO, __: TextIO) -> int:
    from agent.images.archive import save

    save(store_for(state), [str(parse_reference(n)) for n in args.names], args.output,
         format=args.format)
    return 0


def _load(args: argparse.Namespace, state: StateDir, _: TextIO, out: TextIO) -> int:
    from agent.images.archive import load

    for name in load(store_for(state), args.input):
        print(f"Loaded image: {parse_reference(name).familiar}", file=out)
    return 0


def _registry(text: str) -> ImageReference:
    """A registry named alone (``127.0.0.1:5000``, ``docker.io``) as a reference to it."""
    host = text.split("://", 1)[-1].rstrip("/")
    return ImageReference("docker.io" if host in ("docker.io", "index.docker.io") else host,
                          "library/x", None, None)


def _login(args: argparse.Namespace, state: StateDir, stdin: TextIO, out: TextIO) -> int:
    registry = _registry(args.registry).registry
    username = args.username or input("Username: ")
    password = args.password if args.password is not None else ask_password(
        stdin, args.password_stdin)
    credentials = Credentials(username, password)
    store = CredentialStore()
    client = client_for(state, args.daemon_config)
    client.auth.use(registry, credentials)
    try:
        client.check_login(_registry(args.registry))
    except AuthError as exc:
        raise AuthError(f"login to {registry} refused: {exc}", status=exc.status) from None
    store.store(registry, credentials)
    print("Login Succeeded", file=out)
    return 0


def _logout(args: argparse.Namespace, _: StateDir, __: TextIO, out: TextIO) -> int:
    registry = _registry(args.registry).registry
    if CredentialStore().remove(registry):
        print(f"Removing login credentials for {registry}", file=out)
    else:
        print(f"Not logged in to {registry}", file=out)
    return 0


def _catalog(args: argparse.Namespace, state: StateDir, _: TextIO, out: TextIO) -> int:
    client = client_for(state, args.daemon_config)
    target = _registry(args.registry)
    for repository in client.catalog(target.registry):
        if args.tags:
            tags = client.tags(ImageReference(target.registry, repository, None, None))
            print(f"{repository}: {' '.join(sorted(tags))}", file=out)
        else:
            print(repository, file=out)
    return 0
