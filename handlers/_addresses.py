"""What an IP address is, for the download safety rules: public, or why not.

Pure functions over ``ipaddress`` values; ``handlers._safety`` decides with them.
"""

from __future__ import annotations

import ipaddress

__all__ = ["IPAddress", "IPNetwork", "classify", "is_metadata", "show"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance metadata and platform endpoints (AWS, GCP, Azure, Alibaba, ECS, Oracle Classic):
# a policy allows one only through a network of exactly that one address.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.169.253",
        "169.254.170.2",
        "169.254.170.23",
        "100.100.100.200",
        "168.63.129.16",
        "192.0.0.192",
        "fd00:ec2::254",
        "fd00:ec2::23",
    )
)


def _table(*pairs: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), name) for net, name in pairs)


_V4 = _table(
    ("0.0.0.0/8", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("169.254.0.0/16", "link-local"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)
_V6 = _table(
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("::/96", "IPv4-compatible"),
    ("fe80::/10", "link-local"),
    ("fc00::/7", "private"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
    ("64:ff9b:1::/48", "local-use NAT64"),
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def classify(address: IPAddress) -> str | None:
    """What makes ``address`` unfit to fetch from, as a predicate (``"is private"``,
    ``"embeds 10.0.0.5, which is private"``), or None for a public address.

    Loopback, private, link-local, CGNAT, multicast, unspecified, broadcast, reserved and cloud
    metadata addresses qualify, as do IPv6 addresses that are IPv4-mapped or -compatible, or
    that embed (NAT64, 6to4, Teredo) an IPv4 address that qualifies itself.
    """
    if is_metadata(address):
        return "is a cloud metadata address"
    for net, name in _V4 if address.version == 4 else _V6:
        if address in net:
            return f"is {name}"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded(address)
        for inner in embedded:
            phrase = classify(inner)
            if phrase is not None:
                return f"embeds {inner}, which {phrase}"
        if embedded:
            return None
    if not address.is_global:
        return "is not globally routable"
    return None


def is_metadata(address: IPAddress) -> bool:
    """Whether ``address`` is a cloud instance-metadata or platform endpoint."""
    return _unscoped(address) in _METADATA


def show(address: IPAddress) -> str:
    """``address`` as reasons print it (IPv4-mapped ones in the dotted form)."""
    # Python < 3.13 prints ::ffff:127.0.0.1 as ::ffff:7f00:1; the dotted form says more.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def _unscoped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return ipaddress.IPv6Address(int(address))
    return address


def _embedded(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    if address in _NAT64:
        return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo
    return ()
