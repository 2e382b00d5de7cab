"""``framehook fake-apiframe``: the fake Apiframe served on its own, like ``stripe-mock``.

Another app (the official Node SDK, a curl script, framehook itself) points its base URL at
it and gets jobs, signed webhooks and result files without an Apiframe account. The fake and
uvicorn are imported inside the command, so other commands do not carry them.
"""

from __future__ import annotations

import secrets
import socket
from typing import Annotated

import typer

from receiver.cli.config import err, fail

__all__ = ["fake_apiframe"]


def _listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening, or a one-line usage error.

    Binding here, before uvicorn starts, turns a taken port into one ``error:`` line (uvicorn
    would log it and exit) and makes ``--port 0`` usable: the port printed is the bound one.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        raise fail(f"--host {host!r} is not an address to listen on ({exc})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def fake_apiframe(
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port to listen on (0: any free port).")] = 8090,
    seed: Annotated[int, typer.Option(help="Seeds every random decision, to repeat a run.")] = 0,
    api_key: Annotated[
        str | None,
        typer.Option(help="The key clients must send as X-API-Key (default: a new one)."),
    ] = None,
    step_seconds: Annotated[float, typer.Option(help="Seconds between a job's steps.")] = 0.5,
    allow_public_webhooks: Annotated[
        bool,
        typer.Option(
            "--allow-public-webhooks",
            help="Also send webhooks to public hosts (by default: loopback and private only).",
        ),
    ] = False,
) -> None:
    """Serve a fake Apiframe v2 for testing your own app: jobs, signed webhooks, result files.

    Prints its base URL and API key, then serves until interrupted (Ctrl-C). Webhooks are
    signed with that key; a job's webhookUrl must be a loopback or private host unless
    --allow-public-webhooks is given.
    """
    import uvicorn

    from receiver.dev.fakeapi import Behaviour, create_fake_apiframe

    if not 0 <= port <= 65535:
        raise fail(f"--port {port} is not a TCP port (0 to 65535; 0 picks a free one)")
    key = api_key if api_key is not None else "afk_" + secrets.token_hex(20)
    if not key.strip():
        raise fail("--api-key must not be empty")
    try:
        behaviour = Behaviour(step_seconds=step_seconds)
    except ValueError as exc:
        raise fail(f"--step-seconds: {exc}") from None
    app = create_fake_apiframe(
        key, behaviour=behaviour, seed=seed, allow_public_webhooks=allow_public_webhooks
    )
    sock = _listening_socket(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    # A server bound to every interface is reached on loopback.
    bound_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(bound_host, bound_host)  # noqa: S104
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    # Standard output carries only what a user (or a script) copies: the URL and the key.
    typer.echo(f"Fake Apiframe listening on http://{shown}:{bound_port}", nl=True)
    typer.echo(f"API key: {key}")
    seal = "any host" if allow_public_webhooks else "loopback and private hosts only"
    err.print(f"webhooks: {seal}; seed {seed}; Ctrl-C stops")
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
