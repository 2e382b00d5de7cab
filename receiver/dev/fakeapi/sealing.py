"""Sealing: the fake sends webhooks only to loopback and private addresses unless told otherwise.

A fake anyone can run (``framehook fake-apiframe``) must not become a way to make a machine
POST to hosts on the internet, so by default a job whose ``webhookUrl`` names a public host is
refused with a 400, and a webhook about to leave for a public address is not sent. "Public" is
:attr:`ipaddress.IPv4Address.is_global`: loopback, RFC 1918 and ULA, link-local, CGNAT
(``100.64.0.0/10``, where Tailscale lives) and documentation ranges are not; multicast is.
A name is public when *any* address it resolves to is, since the sender may connect to any.

A name that does not resolve at all (or not within three seconds) is accepted when the job is
created (Apiframe accepts it, and its deliveries then fail); should it later resolve to a public
address, the check made when each webhook is sent refuses it. That check resolves the name
again, just before httpx does: it narrows, but does not close, a DNS-rebinding window (the fake
is a test tool, not a proxy).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

__all__ = ["public_address", "webhook_url_problem"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# A name that takes longer is treated as not resolving: a job request must not hang on DNS.
RESOLVE_TIMEOUT_SECONDS = 3.0


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


async def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to; none if it does not resolve (in time)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, TimeoutError):
        return []
    found = (_literal(str(info[4][0])) for info in infos)
    return [address for address in found if address is not None]


async def public_address(url: str) -> IPAddress | None:
    """The first public address ``url``'s host is or resolves to, or ``None`` if it has none.

    Raises:
        ValueError: ``url`` has no host (or a malformed port).
    """
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise ValueError("has no host")
    literal = _literal(host)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = [literal] if literal is not None else await _resolve(host, port)
    return next((address for address in addresses if address.is_global), None)


async def webhook_url_problem(url: str) -> str | None:
    """Why a sealed fake refuses ``url`` as a job's ``webhookUrl``, or ``None`` if it may send
    there (``url`` is already known to be an http(s) URL)."""
    try:
        address = await public_address(url)
    except ValueError as exc:
        return f"must be an http(s) URL with a host ({exc})"
    if address is None:
        return None
    return (
        f"resolves to the public address {address}: this fake sends webhooks only to loopback "
        "and private addresses (start it with --allow-public-webhooks to lift that)"
    )
