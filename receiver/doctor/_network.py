"""Checks over the network: the public URL reaches this receiver; Apiframe accepts the key."""

from __future__ import annotations

import asyncio
import socket
import time
from ipaddress import ip_address

import httpx

from receiver.apiframe.client import ApiframeClient, ApiframeError
from receiver.doctor._result import Check, Status
from receiver.doctor._settings import key_tail
from receiver.settings import Settings

__all__ = ["check_apiframe", "check_public_url"]


def _not_public(host: str) -> str | None:
    """Why Apiframe, on the internet, cannot reach ``host``; ``None`` if it may.

    A name is resolved: one whose every address is loopback or private (a LAN name, an
    ``/etc/hosts`` entry) is as unreachable as such an address. A name that does not resolve
    is left to the request, which fails on it anyway.
    """
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is this machine (loopback)"
    try:
        address = ip_address(host)
    except ValueError:
        pass
    else:
        if address.is_global:
            return None
        return f"{host} is {'a loopback' if address.is_loopback else 'a private'} address"
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return None
    addresses = {ip_address(str(info[4][0]).split("%")[0]) for info in found}
    if not addresses or any(a.is_global for a in addresses):
        return None
    kind = "loopback" if all(a.is_loopback for a in addresses) else "private"
    return f"{host} resolves to {', '.join(sorted(map(str, addresses)))} ({kind})"


def _not_public_url(url: str | None) -> str | None:
    """Why Apiframe cannot reach ``url``'s host; ``None`` if it may, or if ``url`` is no
    http(s) URL at all (the request says so)."""
    try:
        parsed = httpx.URL((url or "").strip())
    except httpx.InvalidURL:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    return _not_public(parsed.host)


def check_public_url(settings: Settings, timeout: float = 5.0) -> list[Check]:
    """Whether ``FRAMEHOOK_PUBLIC_URL`` reaches this receiver (``GET /healthz``), and whether
    it is an address Apiframe can reach at all (not loopback or private: a warning, since
    it still answers from here)."""
    checks = _check_healthz(settings, timeout)
    why = _not_public_url(settings.public_url)
    if why is None:
        return checks
    hint = (
        "Apiframe sends webhooks from the internet: use a public address, such as a tunnel's "
        "(`framehook serve --tunnel cloudflared`) or your reverse proxy's https URL"
    )
    return [
        Check(
            c.name,
            Status.WARN if c.status is Status.OK else c.status,
            f"{c.detail}; but {why}: Apiframe cannot reach it",
            hint if c.status is Status.OK else c.hint,
        )
        for c in checks
    ]


def _check_healthz(settings: Settings, timeout: float) -> list[Check]:
    if not settings.public_url:
        return [
            Check(
                "public url",
                Status.WARN,
                "FRAMEHOOK_PUBLIC_URL unset: cannot tell whether Apiframe reaches this receiver, "
                "and `framehook generate` cannot name a webhook URL",
                "set FRAMEHOOK_PUBLIC_URL to the address Apiframe reaches (a tunnel's on a laptop)",
            )
        ]
    url = settings.public_url.strip().rstrip("/") + "/healthz"
    unreachable_hint = "is `framehook serve` running, and the tunnel or proxy forwarding to it?"
    try:
        started = time.perf_counter()
        response = httpx.get(url, timeout=timeout)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        return [
            Check(
                "public url",
                Status.FAIL,
                f"{settings.public_url!r} is not an http(s) URL: {exc}",
                "FRAMEHOOK_PUBLIC_URL: https://your.host (no path)",
            )
        ]
    except httpx.HTTPError as exc:
        return [
            Check(
                "public url",
                Status.FAIL,
                f"GET {url}: {type(exc).__name__}: {exc}",
                unreachable_hint,
            )
        ]
    elapsed = (time.perf_counter() - started) * 1000
    answer = f"GET {url}: {response.status_code} {response.reason_phrase}"
    if response.status_code != 200:
        return [Check("public url", Status.FAIL, answer, unreachable_hint)]
    try:
        framehook = response.json() == {"ok": True}
    except ValueError:
        framehook = False
    if not framehook:
        return [
            Check(
                "public url",
                Status.WARN,
                f"{answer}, but not framehook's answer",
                "check that the tunnel or proxy forwards to this receiver, not another service",
            )
        ]
    return [Check("public url", Status.OK, f"{answer} in {elapsed:.0f} ms")]


def check_apiframe(settings: Settings, timeout: float = 5.0) -> list[Check]:
    """Whether Apiframe's job API accepts the first key (one ``GET /v2/jobs?limit=1``)."""
    keys = settings.signing_api_keys()
    if not keys:
        return [Check("apiframe", Status.WARN, "not asked: no API key", "set APIFRAME_API_KEY")]

    async def ask() -> None:
        client = ApiframeClient(keys[0], base_url=settings.apiframe_url, attempts=1)
        try:
            await asyncio.wait_for(client.jobs(limit=1), timeout)
        finally:
            await client.aclose()

    try:
        asyncio.run(ask())
    except ApiframeError as exc:
        if exc.status in (401, 403):
            return [
                Check(
                    "apiframe",
                    Status.FAIL,
                    f"{settings.apiframe_url} refused the key {key_tail(keys[0])}: {exc}",
                    "APIFRAME_API_KEY must be a key from your Apiframe dashboard",
                )
            ]
        return [
            Check(
                "apiframe",
                Status.FAIL,
                str(exc),
                "check the network and FRAMEHOOK_APIFRAME_URL",
            )
        ]
    except TimeoutError:
        return [
            Check(
                "apiframe",
                Status.FAIL,
                f"{settings.apiframe_url}: no answer within {timeout:g} s",
                "check the network and FRAMEHOOK_APIFRAME_URL",
            )
        ]
    return [Check("apiframe", Status.OK, f"{settings.apiframe_url} accepts the key")]
