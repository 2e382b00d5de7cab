"""The network backend of framehook's safe client: resolve once, check, connect to the check.

httpcore's pool calls ``connect_tcp(host=<the URL's host>)`` for each new connection. The
backend resolves the name once (off the event loop), refuses the connection if any address is
refused, and connects to a checked IP literal through httpcore's own anyio backend. The pool
then calls ``start_tls(server_hostname=<the URL's host>)`` on the returned stream, so SNI and
certificate verification still use the name, never the IP.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Callable, Iterable

import anyio
import anyio.to_thread
import httpcore

from handlers._addresses import IPAddress
from handlers._safety import FetchPolicy, address_refusal

__all__ = ["CheckedBackend", "RefusedAddress", "Resolver", "system_resolver"]

Resolver = Callable[[str], Iterable[str]]
"""Maps a host name to its IP addresses (blocking is fine: it runs in a worker thread)."""


class RefusedAddress(Exception):
    """A host resolved to a refused address; the transport turns it into ``UnsafeURL``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def system_resolver(host: str) -> list[str]:
    """Every address ``host`` resolves to, via ``getaddrinfo`` (blocking)."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows, resolving each host name once."""

    def __init__(
        self,
        policy: FetchPolicy,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolver = resolver or system_resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        deadline = None if timeout is None else anyio.current_time() + timeout
        addresses = await self._addresses(host, timeout)
        for address in addresses:
            reason = address_refusal(address, self._policy)
            if reason is not None:
                raise RefusedAddress(reason)
        error: Exception = httpcore.ConnectError(f"{host} resolved to no address")
        for address in addresses:
            left = None if deadline is None else max(0.0, deadline - anyio.current_time())
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=left,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)

    async def _addresses(self, host: str, limit: float | None) -> list[IPAddress]:
        with contextlib.suppress(ValueError):
            return [ipaddress.ip_address(host)]
        resolver = self._resolver
        try:
            with anyio.fail_after(limit):
                found = await anyio.to_thread.run_sync(
                    lambda: list(resolver(host)), abandon_on_cancel=True
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses: list[IPAddress] = []
        for text in found:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise RefusedAddress(f"{host} resolved to {text!r}, not an IP address") from None
            if address not in addresses:
                addresses.append(address)
        return addresses
