"""framehook's safe HTTP client: httpx on a transport that enforces the download rules.

How a request travels::

    httpx.AsyncClient        trust_env=False (no proxies), identity encoding, User-Agent
    └── SafeTransport        checks every URL, follows redirects itself and checks each hop
        └── httpcore.AsyncConnectionPool
            └── CheckedBackend   resolves the host once, refuses if any address is refused,
                │                connects to a checked IP; TLS still verifies the host name
                └── _LargeReads  offers each socket read 256 KiB, not httpcore's 64 KiB
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import httpcore
import httpx

from handlers._backend import CheckedBackend, RefusedAddress, Resolver
from handlers._safety import FetchPolicy, UnsafeURL, check_url

__all__ = ["SafeTransport", "UnsafeURL", "safe_client"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# httpcore asks its stream for 64 KiB at a time: a 1 GiB body is 16,384 reads, each tens of
# microseconds of Python (anyio, httpcore, h11), and anyio cuts each 256 KiB the event loop
# took from the socket into 64 KiB slices, copying what is left after every cut. Offering
# 256 KiB takes what the loop delivered in one read, uncut. Measured, the download handler
# capturing 1 GiB over loopback into local storage: a fifth to a quarter less CPU (3.8-4.8 s
# -> 3.0-3.4 s; offering 1 MiB saved about 0.3 s more, with pieces twice the download chunk).
# A read returns only what has arrived, so memory is bounded by this size; over TLS a read
# returns one record (16 KiB) whatever is offered.
_READ_BYTES = 256 * 1024
_CREDENTIALS = ("authorization", "cookie", "proxy-authorization")
_BODY_HEADERS = ("content-length", "content-type", "transfer-encoding")
# Most specific first: the first match wins.
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


def safe_client(
    policy: FetchPolicy,
    *,
    resolver: Resolver | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that enforces ``policy`` on every request and redirect hop.

    Redirects are followed by the transport (at most ``policy.max_redirects``, each hop
    checked again), so the client's ``follow_redirects`` changes nothing. Bodies are never
    decompressed: ``Accept-Encoding: identity`` is always sent, and a ``Content-Encoding`` the
    server applies anyway is moved from the response headers to
    ``response.extensions["content_encoding"]``, so the bytes arrive as sent. Proxies from the
    environment are ignored. Per-request timeouts may be shorter than the policy's, not longer.

    Args:
        policy: the rules and timeouts.
        resolver: host name → addresses; the system resolver (``getaddrinfo``) by default.
        ssl_context: trust for https (default: certifi's CAs, or ``SSL_CERT_FILE``); it must
            verify certificates and host names.

    Raises:
        ValueError: ``ssl_context`` does not verify certificates or host names.
    """
    if ssl_context is not None and (
        ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname
    ):
        raise ValueError("ssl_context must verify certificates and host names")
    return httpx.AsyncClient(
        transport=SafeTransport(policy, resolver=resolver, ssl_context=ssl_context),
        timeout=policy.timeout(),
        headers={"Accept-Encoding": "identity", "User-Agent": _user_agent()},
        follow_redirects=False,
        trust_env=False,
    )


class SafeTransport(httpx.AsyncBaseTransport):
    """Sends requests through a ``CheckedBackend`` pool, checking and following redirects."""

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._policy = policy
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=CheckedBackend(policy, resolver, inner=_LargeReads()),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        seen: set[str] = set()
        while True:
            check_url(request.url, self._policy)
            seen.add(str(request.url.copy_with(fragment=None)))
            response = await self._send(request)
            location = httpx.Headers(response.headers).get("location")
            if response.status not in _REDIRECTS or location is None:
                return _undecoded(response)
            await response.aclose()  # unread body: the connection is dropped, not reused
            request = _next_hop(request, response.status, location, seen, self._policy)

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def _send(self, request: httpx.Request) -> httpcore.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        url = request.url
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"accept-encoding"]
        headers.append((b"Accept-Encoding", b"identity"))
        # The TLS name is always the URL's host: no sni_hostname override.
        extensions = {k: v for k, v in request.extensions.items() if k != "sni_hostname"}
        extensions["timeout"] = self._timeouts(extensions.get("timeout") or {})
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme,
                host=url.raw_host.removesuffix(b"."),
                port=url.port,
                target=url.raw_path,
            ),
            headers=headers,
            content=request.stream,
            extensions=extensions,
        )
        try:
            with _mapped_exceptions():
                return await self._pool.handle_async_request(core)
        except RefusedAddress as exc:
            raise UnsafeURL(url, exc.reason) from None

    def _timeouts(self, asked: dict[str, float | None]) -> dict[str, float]:
        policy = self._policy
        limits = {
            "connect": policy.connect_timeout,
            "read": policy.read_timeout,
            "write": policy.write_timeout,
            "pool": policy.pool_timeout,
        }
        timeouts = {}
        for name, limit in limits.items():
            wanted = asked.get(name)
            timeouts[name] = limit if wanted is None else min(limit, wanted)
        return timeouts


class _LargeReads(httpcore.AsyncNetworkBackend):
    """httpcore's own backend, its streams reading at least ``_READ_BYTES`` at a time."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _LargeReadStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _LargeReadStream(httpcore.AsyncNetworkStream):
    """A stream whose reads ask for ``_READ_BYTES`` when the caller asks for less.

    Returning more than ``max_bytes`` is safe here: httpcore hands what it reads to its h11 or
    h2 parser whole, whatever the size.
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(
        self,
        max_bytes: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
    ) -> bytes:
        return await self._inner.read(max(max_bytes, _READ_BYTES), timeout)

    async def write(
        self,
        buffer: bytes,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
    ) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
    ) -> httpcore.AsyncNetworkStream:
        return _LargeReadStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped_exceptions():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        with _mapped_exceptions():
            await self._stream.aclose()


def _next_hop(
    request: httpx.Request, status: int, location: str, seen: set[str], policy: FetchPolicy
) -> httpx.Request:
    try:
        url = request.url.join(location)
    except httpx.InvalidURL:
        raise UnsafeURL(request.url, "redirect location is not a valid URL") from None
    if len(seen) > policy.max_redirects:
        raise UnsafeURL(url, f"too many redirects ({policy.max_redirects})")
    if request.url.scheme == "https" and url.scheme == "http":
        raise UnsafeURL(url, "redirect downgrades https to http")
    if str(url.copy_with(fragment=None)) in seen:
        raise UnsafeURL(url, "redirect loop")
    method, stream = request.method, request.stream
    headers = request.headers.copy()
    if (status in (302, 303) and method != "HEAD") or (status == 301 and method == "POST"):
        method, stream = "GET", httpx.ByteStream(b"")
        for name in _BODY_HEADERS:
            headers.pop(name, None)
    if _origin(url) != _origin(request.url):
        for name in _CREDENTIALS:
            headers.pop(name, None)
    headers["Host"] = url.netloc.decode("ascii")
    return httpx.Request(method, url, headers=headers, stream=stream, extensions=request.extensions)


def _origin(url: httpx.URL) -> tuple[str, bytes, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.raw_host.removesuffix(b"."), url.port or default


def _undecoded(response: httpcore.Response) -> httpx.Response:
    headers = httpx.Headers(response.headers)
    extensions = dict(response.extensions)
    encoding = headers.get("content-encoding")
    if encoding is not None:
        del headers["content-encoding"]
        extensions["content_encoding"] = encoding
    return httpx.Response(
        status_code=response.status,
        headers=headers,
        stream=_ResponseStream(response.stream),
        extensions=extensions,
    )


@contextlib.contextmanager
def _mapped_exceptions() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for source, target in _EXCEPTIONS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


def _user_agent() -> str:
    try:
        return f"framehook/{importlib.metadata.version('framehook')}"
    except importlib.metadata.PackageNotFoundError:
        return "framehook/unknown"
