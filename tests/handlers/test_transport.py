"""The safe client against real loopback HTTP and HTTPS servers: what it fetches, what it
refuses (before connecting), redirects, credentials, encoding, proxies and TLS."""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpcore
import httpx
import pytest
import trustme

from handlers import FetchPolicy, UnsafeURL, safe_client
from handlers._backend import CheckedBackend, RefusedAddress

UNSPECIFIED = "0.0.0.0"  # noqa: S104 (an address to refuse, never one to bind)
NAMES = {
    "cdn.test": ["127.0.0.1"],
    "other.test": ["127.0.0.1"],
    "v6loop.test": ["::1"],
    "private.test": ["10.0.0.5"],
    "ula.test": ["fd12:3456::1"],
    "linklocal.test": ["169.254.10.10"],
    "cgnat.test": ["100.64.0.1"],
    "metadata.test": ["169.254.169.254"],
    "alibaba.test": ["100.100.100.200"],
    "ec2v6.test": ["fd00:ec2::254"],
    "multicast.test": ["224.0.0.251"],
    "unspecified.test": [UNSPECIFIED],
    "broadcast.test": ["255.255.255.255"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "nat64.test": ["64:ff9b::a00:5"],
    "sixtofour.test": ["2002:7f00:1::1"],
    "mixed.test": ["93.184.216.34", "127.0.0.1"],
}
# Loopback allowed: the test servers live there.
OPEN = FetchPolicy(hosts=("*.test",), allow_networks=("127.0.0.0/8",), allow_http=True)
HTTPS_ONLY = FetchPolicy(hosts=("*.test",), allow_networks=("127.0.0.0/8",))
# Nothing private allowed; literals listed so that the address rules are what refuses them.
STRICT = FetchPolicy(
    hosts=("*.test", "127.0.0.1", "::1", UNSPECIFIED, "::ffff:127.0.0.1", "cdn.apiframe.ai"),
    allow_http=True,
)
DEFAULT = FetchPolicy()
BOMB = gzip.compress(b"\0" * 10_000_000)


class FakeDNS:
    """A resolver over ``NAMES`` that records every name it is asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, host: str) -> Sequence[str]:
        self.asked.append(host)
        if host not in NAMES:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return NAMES[host]


class Server(ThreadingHTTPServer):
    """A loopback server counting accepted connections (and TLS server names) and requests."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.connections = 0
        self.server_names: list[str | None] = []
        self.requests: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), Handler)
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    def get_request(self) -> tuple[Any, Any]:
        request, address = super().get_request()
        self.connections += 1
        return request, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(5)
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except OSError:  # the client refused our certificate
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up early are part of the tests


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.route()

    def do_POST(self) -> None:
        self.route()

    def route(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        seen = {"method": self.command, "path": url.path, "headers": headers, "body": body}
        self.server.requests.append(seen)
        if url.path == "/echo":
            echo = {**seen, "body": body.decode()}
            self.send(200, json.dumps(echo).encode(), {"Content-Type": "application/json"})
        elif url.path == "/redirect":
            self.send(int(query.get("status", "302")), b"", {"Location": query["to"]})
        elif url.path.startswith("/chain/"):
            left = int(url.path.rsplit("/", 1)[1])
            if left:
                self.send(302, b"", {"Location": f"/chain/{left - 1}"})
            else:
                self.send(200, b"end")
        elif url.path in ("/loop/a", "/loop/b"):
            self.send(302, b"", {"Location": "/loop/b" if url.path == "/loop/a" else "/loop/a"})
        elif url.path == "/gzip":
            self.send(200, BOMB, {"Content-Encoding": "gzip", "Content-Type": "image/png"})
        elif url.path == "/slow":
            time.sleep(1)
            self.send(200, b"late")
        else:
            self.send(200, b"hello")

    def send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serving(tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    server = Server(tls)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    """A plain HTTP loopback server."""
    with serving() as running:
        yield running


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[Server]:
    """An HTTPS loopback server whose certificate names cdn.test and localhost (no IPs)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("cdn.test", "localhost").configure_cert(context)
    with serving(context) as running:
        yield running


@pytest.fixture
def trust(ca: trustme.CA) -> ssl.SSLContext:
    """A client context trusting only the test CA."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def dns() -> FakeDNS:
    """The injected resolver (the test names are unknown to the system resolver)."""
    return FakeDNS()


async def fetch(
    policy: FetchPolicy,
    url: str,
    dns: FakeDNS,
    *,
    method: str = "GET",
    ssl_context: ssl.SSLContext | None = None,
    **kwargs: Any,
) -> httpx.Response:
    async with safe_client(policy, resolver=dns, ssl_context=ssl_context) as client:
        return await client.request(method, url, **kwargs)


async def refusal(policy: FetchPolicy, url: str, dns: FakeDNS, **kwargs: Any) -> UnsafeURL:
    async with safe_client(policy, resolver=dns) as client:
        with pytest.raises(UnsafeURL) as caught:
            await client.request(kwargs.pop("method", "GET"), url, **kwargs)
    return caught.value


@pytest.mark.anyio
async def test_allowed_host_is_fetched(server: Server, dns: FakeDNS) -> None:
    """An allowed name on an allowed network is fetched, resolved once by the injected resolver."""
    response = await fetch(OPEN, f"http://cdn.test:{server.port}/", dns)
    assert (response.status_code, response.content) == (200, b"hello")
    assert dns.asked == ["cdn.test"]


@pytest.mark.anyio
async def test_host_case_and_trailing_dot_are_normalised(server: Server, dns: FakeDNS) -> None:
    """CDN.Test. is cdn.test: allowed, and resolved without the dot."""
    response = await fetch(OPEN, f"http://CDN.Test.:{server.port}/", dns)
    assert response.status_code == 200
    assert dns.asked == ["cdn.test"]


@pytest.mark.anyio
async def test_literal_ip_listed_exactly_is_fetched(server: Server, dns: FakeDNS) -> None:
    """A literal IP listed in the hosts and inside an allowed network is fetched, unresolved."""
    policy = FetchPolicy(hosts=("127.0.0.1",), allow_networks=("127.0.0.1/32",), allow_http=True)
    assert (await fetch(policy, f"http://127.0.0.1:{server.port}/", dns)).status_code == 200
    assert dns.asked == []


@pytest.mark.anyio
async def test_unresolvable_name_is_a_retryable_connect_error(dns: FakeDNS) -> None:
    """A name that does not resolve is an httpx.ConnectError (transient), not UnsafeURL."""
    async with safe_client(OPEN, resolver=dns) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://nowhere.test/")


@pytest.mark.anyio
async def test_https_verifies_the_host_name_while_connecting_to_the_checked_ip(
    tls_server: Server, dns: FakeDNS, trust: ssl.SSLContext
) -> None:
    """https to cdn.test connects to its checked 127.0.0.1, and TLS uses the name (SNI, cert)."""
    response = await fetch(
        HTTPS_ONLY, f"https://cdn.test:{tls_server.port}/echo", dns, ssl_context=trust
    )
    assert response.status_code == 200
    assert response.json()["headers"]["host"] == f"cdn.test:{tls_server.port}"
    assert tls_server.server_names == ["cdn.test"]
    assert dns.asked == ["cdn.test"]


@pytest.mark.anyio
async def test_https_refuses_a_certificate_for_another_name(
    tls_server: Server, dns: FakeDNS, trust: ssl.SSLContext
) -> None:
    """A certificate that does not name the URL's host fails verification, same IP or not."""
    async with safe_client(HTTPS_ONLY, resolver=dns, ssl_context=trust) as client:
        with pytest.raises(httpx.ConnectError, match=r"other\.test"):
            await client.get(f"https://other.test:{tls_server.port}/")
    assert tls_server.server_names == ["other.test"]
    assert tls_server.requests == []


def test_a_context_that_does_not_verify_is_rejected() -> None:
    """safe_client refuses an ssl_context without certificate or host name verification."""
    context = ssl.create_default_context()
    context.check_hostname = False
    with pytest.raises(ValueError, match="verify"):
        safe_client(OPEN, ssl_context=context)


SSRF = [
    ("http://cdn.test:{port}/", HTTPS_ONLY, "scheme http not allowed"),
    ("http://cdn.test:{port}/", STRICT, "address 127.0.0.1 is loopback"),
    ("http://v6loop.test:{port}/", STRICT, "address ::1 is loopback"),
    ("http://private.test:{port}/", STRICT, "address 10.0.0.5 is private"),
    ("http://ula.test:{port}/", STRICT, "address fd12:3456::1 is private"),
    ("http://linklocal.test:{port}/", STRICT, "address 169.254.10.10 is link-local"),
    ("http://cgnat.test:{port}/", STRICT, "address 100.64.0.1 is carrier-grade NAT"),
    (
        "http://metadata.test/latest/meta-data/",
        STRICT,
        "address 169.254.169.254 is a cloud metadata address",
    ),
    ("http://alibaba.test/", STRICT, "address 100.100.100.200 is a cloud metadata address"),
    ("http://ec2v6.test/", STRICT, "address fd00:ec2::254 is a cloud metadata address"),
    ("http://multicast.test:{port}/", STRICT, "address 224.0.0.251 is multicast"),
    ("http://unspecified.test:{port}/", STRICT, "address 0.0.0.0 is unspecified"),
    ("http://broadcast.test:{port}/", STRICT, "address 255.255.255.255 is broadcast"),
    ("http://mapped.test:{port}/", STRICT, "address ::ffff:127.0.0.1 is IPv4-mapped"),
    (
        "http://nat64.test:{port}/",
        STRICT,
        "address 64:ff9b::a00:5 embeds 10.0.0.5, which is private",
    ),
    (
        "http://sixtofour.test:{port}/",
        STRICT,
        "address 2002:7f00:1::1 embeds 127.0.0.1, which is loopback",
    ),
    ("http://mixed.test:{port}/", STRICT, "address 127.0.0.1 is loopback"),
    ("http://127.1:{port}/", STRICT, "host 127.1 is a non-canonical IPv4 address"),
    ("http://2130706433:{port}/", STRICT, "host 2130706433 is a non-canonical IPv4 address"),
    ("http://0x7f000001:{port}/", STRICT, "host 0x7f000001 is a non-canonical IPv4 address"),
    ("http://017700000001:{port}/", STRICT, "host 017700000001 is a non-canonical IPv4 address"),
    ("http://127.0.0.1:{port}/", STRICT, "address 127.0.0.1 is loopback"),
    ("http://[::1]:{port}/", STRICT, "address ::1 is loopback"),
    ("http://[::ffff:127.0.0.1]:{port}/", STRICT, "address ::ffff:127.0.0.1 is IPv4-mapped"),
    ("http://[::ffff:7f00:1]:{port}/", STRICT, "address ::ffff:127.0.0.1 is IPv4-mapped"),
    (
        "http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/",
        STRICT,
        "address ::ffff:127.0.0.1 is IPv4-mapped",
    ),
    ("http://0.0.0.0:{port}/", STRICT, "address 0.0.0.0 is unspecified"),
    ("http://[fe80::1%25eth0]:{port}/", STRICT, "host fe80::1%eth0 has an IPv6 zone id"),
    ("http://10.0.0.5:{port}/", STRICT, "host 10.0.0.5 not in FRAMEHOOK_ASSET_HOSTS"),
    (
        "https://cdn.apiframe.ai@127.0.0.1:{port}/",
        STRICT,
        "credentials in the URL (user@host) not allowed",
    ),
    ("https://user:pw@cdn.apiframe.ai/", STRICT, "credentials in the URL (user@host) not allowed"),
    (
        "https://cdn.apiframe.ai.evil.com/",
        DEFAULT,
        "host cdn.apiframe.ai.evil.com not in FRAMEHOOK_ASSET_HOSTS",
    ),
    ("https://evilapiframe.ai/", DEFAULT, "host evilapiframe.ai not in FRAMEHOOK_ASSET_HOSTS"),
    ("https://apiframe.ai/", DEFAULT, "host apiframe.ai not in FRAMEHOOK_ASSET_HOSTS"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("template", "policy", "reason"), SSRF)
async def test_ssrf_corpus_is_refused_before_any_connection(
    server: Server, dns: FakeDNS, template: str, policy: FetchPolicy, reason: str
) -> None:
    """Each URL is refused with its reason, and no connection reaches the loopback server."""
    url = template.format(port=server.port) + "?token=secret"
    refused = await refusal(policy, url, dns)
    assert refused.reason == reason
    assert "secret" not in str(refused)
    assert "pw@" not in refused.url
    assert server.connections == 0


@pytest.mark.anyio
async def test_a_host_off_the_allow_list_is_never_resolved(dns: FakeDNS) -> None:
    """The allow-list is checked before DNS: a refused host costs no lookup."""
    await refusal(DEFAULT, "https://cdn.apiframe.ai.evil.com/", dns)
    await refusal(OPEN, "http://evil.example/", dns)
    assert dns.asked == []


REDIRECT_REFUSALS = [
    ("http://private.test:{port}/echo", "address 10.0.0.5 is private"),
    (
        "http://metadata.test/latest/meta-data/",
        "address 169.254.169.254 is a cloud metadata address",
    ),
    ("http://[::1]:{port}/echo", "host ::1 not in FRAMEHOOK_ASSET_HOSTS"),
    ("http://evil.example:{port}/echo", "host evil.example not in FRAMEHOOK_ASSET_HOSTS"),
    ("http://user:pw@other.test:{port}/echo", "credentials in the URL (user@host) not allowed"),
    ("file:///etc/passwd", "scheme file not allowed"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("target", "reason"), REDIRECT_REFUSALS)
async def test_redirect_hops_are_checked_again(
    server: Server, dns: FakeDNS, target: str, reason: str
) -> None:
    """A redirect to a refused address, host, URL form or scheme is refused, not followed."""
    url = f"http://cdn.test:{server.port}/redirect"
    refused = await refusal(OPEN, url, dns, params={"to": target.format(port=server.port)})
    assert refused.reason == reason
    assert server.paths == ["/redirect"]


@pytest.mark.anyio
async def test_redirect_from_https_to_http_is_refused(
    tls_server: Server, server: Server, dns: FakeDNS, trust: ssl.SSLContext
) -> None:
    """https → http is refused even where plain http is allowed."""
    target = f"http://cdn.test:{server.port}/echo"
    async with safe_client(OPEN, resolver=dns, ssl_context=trust) as client:
        with pytest.raises(UnsafeURL) as caught:
            await client.get(f"https://cdn.test:{tls_server.port}/redirect", params={"to": target})
    assert caught.value.reason == "redirect downgrades https to http"
    assert server.connections == 0


@pytest.mark.anyio
async def test_five_redirects_are_followed(server: Server, dns: FakeDNS) -> None:
    """A chain of five redirects ends at its target, each hop fetched once."""
    response = await fetch(OPEN, f"http://cdn.test:{server.port}/chain/5", dns)
    assert (response.status_code, response.content) == (200, b"end")
    assert server.paths == [f"/chain/{n}" for n in range(5, -1, -1)]


@pytest.mark.anyio
async def test_a_sixth_redirect_is_refused(server: Server, dns: FakeDNS) -> None:
    """A chain of six redirects is refused at the sixth, whose target is never fetched."""
    refused = await refusal(OPEN, f"http://cdn.test:{server.port}/chain/6", dns)
    assert refused.reason == "too many redirects (5)"
    assert "/chain/0" not in server.paths


@pytest.mark.anyio
async def test_a_redirect_loop_is_stopped(server: Server, dns: FakeDNS) -> None:
    """A → B → A is refused when it comes back to A."""
    refused = await refusal(OPEN, f"http://cdn.test:{server.port}/loop/a", dns)
    assert refused.reason == "redirect loop"
    assert server.paths == ["/loop/a", "/loop/b"]


@pytest.mark.anyio
async def test_client_follow_redirects_changes_nothing(server: Server, dns: FakeDNS) -> None:
    """With or without follow_redirects the transport follows (and checks) every hop."""
    for follow in (False, True):
        url = f"http://cdn.test:{server.port}/chain/2"
        response = await fetch(OPEN, url, dns, follow_redirects=follow)
        assert (response.status_code, response.content) == (200, b"end")


CREDENTIALS = {
    "Authorization": "Bearer secret",
    "Cookie": "session=secret",
    "Proxy-Authorization": "Basic secret",
    "X-Trace": "kept",
}


@pytest.mark.anyio
async def test_credentials_are_dropped_when_a_redirect_changes_host(
    server: Server, dns: FakeDNS
) -> None:
    """Authorization, Cookie and Proxy-Authorization do not follow a redirect to another host."""
    target = f"http://other.test:{server.port}/echo"
    url = f"http://cdn.test:{server.port}/redirect"
    echo = (await fetch(OPEN, url, dns, params={"to": target}, headers=CREDENTIALS)).json()
    assert echo["headers"]["host"] == f"other.test:{server.port}"
    assert echo["headers"]["x-trace"] == "kept"
    for name in ("authorization", "cookie", "proxy-authorization"):
        assert name not in echo["headers"]


@pytest.mark.anyio
async def test_credentials_follow_a_redirect_on_the_same_host(server: Server, dns: FakeDNS) -> None:
    """A redirect within the same origin keeps the caller's Authorization."""
    url = f"http://cdn.test:{server.port}/redirect"
    echo = (await fetch(OPEN, url, dns, params={"to": "/echo"}, headers=CREDENTIALS)).json()
    assert echo["headers"]["authorization"] == "Bearer secret"


@pytest.mark.anyio
async def test_303_turns_a_post_into_a_get_without_body(server: Server, dns: FakeDNS) -> None:
    """303 See Other is followed with GET and no body, as browsers do."""
    url = f"http://cdn.test:{server.port}/redirect"
    params = {"to": "/echo", "status": "303"}
    echo = (await fetch(OPEN, url, dns, method="POST", params=params, content=b"payload")).json()
    assert (echo["method"], echo["body"]) == ("GET", "")
    assert "content-length" not in echo["headers"]


@pytest.mark.anyio
async def test_307_repeats_the_post_with_its_body(server: Server, dns: FakeDNS) -> None:
    """307 Temporary Redirect keeps the method and the body."""
    url = f"http://cdn.test:{server.port}/redirect"
    params = {"to": "/echo", "status": "307"}
    echo = (await fetch(OPEN, url, dns, method="POST", params=params, content=b"payload")).json()
    assert (echo["method"], echo["body"]) == ("POST", "payload")


@pytest.mark.anyio
async def test_identity_encoding_and_user_agent_are_always_sent(
    server: Server, dns: FakeDNS
) -> None:
    """Accept-Encoding: identity is sent on every hop even if the caller asks for gzip."""
    url = f"http://cdn.test:{server.port}/redirect"
    headers = {"Accept-Encoding": "gzip, br"}
    await fetch(OPEN, url, dns, params={"to": "/echo"}, headers=headers)
    assert [r["headers"]["accept-encoding"] for r in server.requests] == ["identity"] * 2
    assert server.requests[0]["headers"]["user-agent"].startswith("framehook/")


@pytest.mark.anyio
async def test_a_gzip_body_arrives_as_its_compressed_bytes(server: Server, dns: FakeDNS) -> None:
    """A server that gzips anyway: the bytes arrive compressed (no bomb), encoding noted aside."""
    async with safe_client(OPEN, resolver=dns) as client:
        url = f"http://cdn.test:{server.port}/gzip"
        async with client.stream("GET", url) as streaming:
            streamed = b"".join([chunk async for chunk in streaming.aiter_bytes()])
        response = await client.get(url)
    assert response.content == BOMB
    assert streamed == BOMB
    assert "content-encoding" not in response.headers
    assert response.extensions["content_encoding"] == "gzip"


@pytest.mark.anyio
async def test_environment_proxies_are_ignored(
    server: Server, dns: FakeDNS, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP(S)_PROXY in the environment is not used (a proxy would skip the address check)."""
    with serving() as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        url = f"http://cdn.test:{server.port}/echo"
        async with httpx.AsyncClient() as client:
            await client.get(url)
        assert proxy.connections == 1  # the environment is live: plain httpx uses the proxy
        assert (await fetch(OPEN, url, dns)).status_code == 200
        assert proxy.connections == 1
        assert server.connections == 1


@pytest.mark.anyio
async def test_policy_timeouts_bound_the_callers(server: Server, dns: FakeDNS) -> None:
    """A caller cannot lift the policy's read timeout (timeout=None still times out)."""
    policy = FetchPolicy(
        hosts=("*.test",), allow_networks=("127.0.0.0/8",), allow_http=True, read_timeout=0.2
    )

    async with safe_client(policy, resolver=dns) as client:
        assert client.timeout == policy.timeout()
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"http://cdn.test:{server.port}/slow", timeout=None)


class SpyBackend(httpcore.AsyncNetworkBackend):
    """Stands in for the default backend: records where it is asked to connect."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.calls: list[tuple[str, int]] = []
        self.failing = failing

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        self.calls.append((host, port))
        if host in self.failing:
            raise httpcore.ConnectError(f"{host} unreachable")
        return httpcore.AsyncMockStream([])


@pytest.mark.anyio
async def test_backend_connects_to_the_checked_address_not_the_name(dns: FakeDNS) -> None:
    """connect_tcp(name) resolves once and hands the default backend the checked IP literal."""
    spy = SpyBackend()
    backend = CheckedBackend(OPEN, dns, inner=spy)
    await backend.connect_tcp("cdn.test", 443)
    assert spy.calls == [("127.0.0.1", 443)]
    assert dns.asked == ["cdn.test"]


@pytest.mark.anyio
async def test_backend_refuses_if_any_address_is_refused(dns: FakeDNS) -> None:
    """One public and one loopback address: refused, and neither is connected to."""
    spy = SpyBackend()
    backend = CheckedBackend(STRICT, dns, inner=spy)
    with pytest.raises(RefusedAddress, match=r"127\.0\.0\.1 is loopback"):
        await backend.connect_tcp("mixed.test", 443)
    assert spy.calls == []


@pytest.mark.anyio
async def test_backend_tries_the_next_checked_address(dns: FakeDNS) -> None:
    """When the first checked address does not answer, the next checked one is tried."""
    policy = FetchPolicy(hosts=("*.test",), allow_networks=("0.0.0.0/0",))
    spy = SpyBackend(failing=frozenset({"93.184.216.34"}))
    await CheckedBackend(policy, dns, inner=spy).connect_tcp("mixed.test", 443)
    assert spy.calls == [("93.184.216.34", 443), ("127.0.0.1", 443)]
