"""The download safety rules as a value and pure checks: which URLs, hosts and addresses
framehook's HTTP client may reach.

Nothing here does I/O. ``handlers._transport`` applies :func:`check_url` to every request and
redirect hop, and :func:`address_refusal` to every address a host name resolves to.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

import httpx

from handlers._addresses import IPAddress, IPNetwork, classify, is_metadata, show
from handlers._signals import PermanentFailure

__all__ = [
    "FetchPolicy",
    "UnsafeURL",
    "address_refusal",
    "canonical_host",
    "check_url",
    "parse_url",
    "public_url",
]

_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
# WHATWG URL: a host whose last label is a number is an IPv4 address in some notation
# (127.1, 2130706433, 0x7f000001, 017700000001). Only dotted-quad decimal is accepted.
_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+")


class UnsafeURL(PermanentFailure):
    """A URL, redirect hop or resolved address the download safety rules refuse.

    Raised before any connection to the refused address is attempted. It is a
    ``PermanentFailure`` (an unhandled one parks the task: retrying cannot help) and never an
    ``httpx.TransportError``, so code that retries transport errors does not retry it.

    Attributes:
        url: the refused URL without credentials, query string or fragment (safe to log).
        reason: a short phrase, e.g. ``"address 10.0.0.5 is private"``.
    """

    def __init__(self, url: httpx.URL | str, reason: str) -> None:
        super().__init__(reason)
        self.url = public_url(url)

    def __str__(self) -> str:
        return f"refused {self.url}: {self.reason}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchPolicy:
    """Where framehook's HTTP client may fetch from, and how long it may wait.

    Attributes:
        hosts: allowed hosts (``FRAMEHOOK_ASSET_HOSTS``): exact names, ``*.example.com``
            (any name below example.com, not example.com itself) or exact IP literals.
            Case, a trailing dot and IDNA are normalised.
        allow_networks: CIDRs that may be connected to although private, loopback or
            otherwise not public (``FRAMEHOOK_ASSET_ALLOW_NETWORKS``). A cloud metadata
            address is allowed only by a network of exactly that one address.
        allow_http: whether plain http is allowed (never as a downgrade from https).
        max_redirects: redirects followed before the request is refused.
        connect_timeout, read_timeout, write_timeout, pool_timeout: seconds; the upper bound
            of what a caller may ask per request.

    Raises:
        ValueError: a host or network cannot be understood, or a number is out of range.
    """

    hosts: tuple[str, ...] = ("*.apiframe.ai",)
    allow_networks: tuple[str, ...] = ()
    allow_http: bool = False
    max_redirects: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    write_timeout: float = 60.0
    pool_timeout: float = 10.0
    _names: frozenset[str | IPAddress] = field(init=False, repr=False, compare=False)
    _suffixes: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("hosts", "allow_networks"):
            if isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a sequence of strings, not one string")
        hosts = tuple(_policy_host(h) for h in self.hosts if h.strip())
        networks = tuple(_policy_network(n) for n in self.allow_networks if n.strip())
        if self.max_redirects < 0:
            raise ValueError(f"max_redirects must be 0 or more, not {self.max_redirects}")
        for name in ("connect_timeout", "read_timeout", "write_timeout", "pool_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be more than 0 seconds")
        setattr_ = object.__setattr__
        setattr_(self, "hosts", tuple(str(h) for h in hosts))
        setattr_(self, "allow_networks", tuple(str(n) for n in networks))
        setattr_(self, "_names", frozenset(h for h in hosts if not str(h).startswith("*.")))
        setattr_(self, "_suffixes", tuple(str(h)[1:] for h in hosts if str(h).startswith("*.")))
        setattr_(self, "_networks", networks)

    def timeout(self) -> httpx.Timeout:
        """The policy's timeouts as httpx wants them."""
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.write_timeout,
            pool=self.pool_timeout,
        )

    def allows_host(self, host: str | IPAddress) -> bool:
        """Whether ``host`` (as :func:`canonical_host` returns it) is on the allow-list."""
        if host in self._names:
            return True
        return isinstance(host, str) and host.endswith(self._suffixes)

    def allows_network(self, address: IPAddress) -> bool:
        """Whether an allowed network contains ``address`` (see ``allow_networks``)."""
        metadata = is_metadata(address)
        return any(
            address in net and (net.num_addresses == 1 or not metadata) for net in self._networks
        )


def check_url(url: httpx.URL, policy: FetchPolicy) -> None:
    """Refuse ``url`` unless its scheme, credentials, host and literal address are allowed.

    Raises:
        UnsafeURL: with the first rule it breaks.
    """
    scheme = url.scheme
    if scheme != "https" and not (scheme == "http" and policy.allow_http):
        raise UnsafeURL(url, f"scheme {scheme or '(none)'} not allowed")
    if url.userinfo:
        raise UnsafeURL(url, "credentials in the URL (user@host) not allowed")
    # Both would otherwise fail only once connecting (a port past 65535 inside anyio, a bad
    # xn-- label at the resolver): as a transport error, retried as if the CDN were down.
    if url.port is not None and not 0 < url.port < 65536:
        raise UnsafeURL(url, f"port {url.port} is not a TCP port (1-65535)")
    try:
        host = canonical_host(url.raw_host.decode("ascii"))
        _decoded_host(url)
    except ValueError as exc:
        raise UnsafeURL(url, str(exc)) from None
    if not policy.allows_host(host):
        raise UnsafeURL(url, f"host {host} not in FRAMEHOOK_ASSET_HOSTS")
    if not isinstance(host, str):
        reason = address_refusal(host, policy)
        if reason is not None:
            raise UnsafeURL(url, reason)


def parse_url(text: str) -> httpx.URL:
    """``text`` as a URL httpx can build a request for.

    httpx parses some URLs it cannot use: it raises a bare ``ValueError`` (``idna.IDNAError``,
    ``UnicodeEncodeError``), not ``InvalidURL``, only once it builds the request, for a host
    with a malformed ``xn--`` label or text with a lone surrogate. Here they are found first.

    Raises:
        httpx.InvalidURL: ``text`` is not a URL httpx can use, saying why.
    """
    try:
        url = httpx.URL(text)
        _decoded_host(url)
    except ValueError as exc:
        raise httpx.InvalidURL(str(exc)) from exc
    return url


def _decoded_host(url: httpx.URL) -> str:
    """``url``'s host as text (``xn--`` labels decoded, as httpx decodes them for ``Host``).

    Raises:
        ValueError: a label is not valid IDNA, saying which host.
    """
    try:
        return url.host
    except ValueError as exc:  # idna.IDNAError
        host = url.raw_host.decode("ascii", "replace")
        raise ValueError(f"host {host} is not a valid internationalised name ({exc})") from exc


def canonical_host(host: str) -> str | IPAddress:
    """``host`` (ASCII, as in a URL) lower-cased without a trailing dot, or its IP address.

    Raises:
        ValueError: not a usable host: an IPv6 zone id, a non-canonical IPv4 notation, or
            characters a host name cannot have. The message is the refusal reason.
    """
    host = host.lower().strip("[]")
    if ":" in host:
        if "%" in host:
            raise ValueError(f"host {unquote(host)} has an IPv6 zone id")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"host {host} is not a valid IPv6 address") from None
    host = host.removesuffix(".")
    labels = host.split(".")
    if _NUMBER.fullmatch(labels[-1]):
        try:
            return ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"host {host} is a non-canonical IPv4 address") from None
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"host {host} is not a valid host name")
    return host


def address_refusal(address: IPAddress, policy: FetchPolicy) -> str | None:
    """Why connecting to ``address`` is refused (``"address 10.0.0.5 is private"``), or None.

    Loopback, private, link-local, CGNAT, multicast, unspecified, reserved and cloud metadata
    addresses are refused, as are IPv6 addresses that are IPv4-mapped or -compatible, or that
    embed (NAT64, 6to4, Teredo) an IPv4 address refused itself, unless an allowed network
    contains the address.
    """
    if policy.allows_network(address):
        return None
    phrase = classify(address)
    return None if phrase is None else f"address {show(address)} {phrase}"


def public_url(url: httpx.URL | str) -> str:
    """``url`` without credentials, query string or fragment: safe for logs and errors."""
    try:
        parsed = httpx.URL(url)
        return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))
    except (httpx.InvalidURL, TypeError):
        return str(url).split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1]


def _policy_host(entry: str) -> str | IPAddress:
    text = entry.strip()
    wildcard = text.startswith("*.")
    name = text[2:] if wildcard else text
    if not name.isascii():
        try:
            name = httpx.URL(scheme="https", host=name, path="/").raw_host.decode("ascii")
        except httpx.InvalidURL:
            raise ValueError(f"FRAMEHOOK_ASSET_HOSTS: {entry!r} is not a host name") from None
    if "*" in name:
        raise ValueError(
            f"FRAMEHOOK_ASSET_HOSTS: {entry!r}: only a leading '*.' wildcard is supported"
        )
    try:
        host = canonical_host(name)
    except ValueError as exc:
        raise ValueError(f"FRAMEHOOK_ASSET_HOSTS: {entry!r}: {exc}") from None
    if wildcard:
        if not isinstance(host, str):
            raise ValueError(f"FRAMEHOOK_ASSET_HOSTS: {entry!r}: a wildcard needs a name")
        return f"*.{host}"
    return host


def _policy_network(entry: str) -> IPNetwork:
    text = entry.strip()
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"FRAMEHOOK_ASSET_ALLOW_NETWORKS: {entry!r} is not a CIDR") from None
    raise ValueError(
        f"FRAMEHOOK_ASSET_ALLOW_NETWORKS: {entry!r} has host bits set (did you mean {loose}?)"
    )
