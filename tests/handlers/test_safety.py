"""The download safety rules as pure checks: the policy value, hosts, URLs and addresses."""

from __future__ import annotations

import dataclasses
import ipaddress

import httpx
import pytest

from handlers import FetchPolicy, PermanentFailure, UnsafeURL
from handlers._safety import address_refusal, canonical_host, check_url

NOTHING_ALLOWED = FetchPolicy(hosts=())


def refusal(url: str, policy: FetchPolicy) -> str | None:
    try:
        check_url(httpx.URL(url), policy)
    except UnsafeURL as exc:
        return exc.reason
    return None


def test_unsafe_url_is_permanent_and_not_a_transport_error() -> None:
    """UnsafeURL is never retried as a transport error: it is a PermanentFailure instead."""
    assert issubclass(UnsafeURL, PermanentFailure)
    assert not issubclass(UnsafeURL, httpx.TransportError)
    assert not issubclass(UnsafeURL, httpx.HTTPError)


def test_unsafe_url_hides_credentials_query_and_fragment() -> None:
    """.url and the message carry neither user:password, query string nor fragment."""
    refused = UnsafeURL(httpx.URL("https://user:pw@cdn.test/a/b.png?sig=secret#x"), "why")
    assert refused.url == "https://cdn.test/a/b.png"
    assert str(refused) == "refused https://cdn.test/a/b.png: why"
    assert refused.reason == "why"


@pytest.mark.parametrize(
    ("pattern", "host", "allowed"),
    [
        ("*.example.com", "cdn.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "evilexample.com", False),
        ("*.example.com", "example.com.evil.net", False),
        ("*.example.com", "cdn.example.com.", True),
        ("*.Example.COM.", "CDN.example.com", True),
        ("example.com", "example.com", True),
        ("example.com", "cdn.example.com", False),
        ("*.apiframe.ai", "cdn.apiframe.ai.evil.com", False),
        ("*.apiframe.ai", "evilapiframe.ai", False),
        ("*.apiframe.ai", "apiframe.ai", False),
        ("*.bücher.example", "www.xn--bcher-kva.example", True),
        ("bücher.example", "xn--bcher-kva.example", True),
        ("10.0.0.5", "10.0.0.5", True),
        ("10.0.0.5", "10.0.0.6", False),
        ("[::1]", "::1", True),
        ("::ffff:127.0.0.1", "::ffff:7f00:1", True),
    ],
)
def test_host_allow_list(pattern: str, host: str, allowed: bool) -> None:
    """Exact names, label-boundary wildcards, case, trailing dots, IDNA and exact IPs."""
    policy = FetchPolicy(hosts=(pattern,))
    assert policy.allows_host(canonical_host(host)) is allowed


def test_unicode_url_host_matches_its_idna_entry() -> None:
    """A URL written in Unicode matches an allow-list entry written in Unicode."""
    policy = FetchPolicy(hosts=("*.bücher.example",))
    assert refusal("https://WWW.Bücher.example/x.png", policy) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://cdn.apiframe.ai/x", "scheme ftp not allowed"),
        ("http://cdn.apiframe.ai/x", "scheme http not allowed"),
        ("https://u@cdn.apiframe.ai/x", "credentials in the URL (user@host) not allowed"),
        ("https://cdn.apiframe.ai@10.0.0.5/", "credentials in the URL (user@host) not allowed"),
        ("https://127.1/", "host 127.1 is a non-canonical IPv4 address"),
        ("https://127.0.1/", "host 127.0.1 is a non-canonical IPv4 address"),
        ("https://0x7f.1/", "host 0x7f.1 is a non-canonical IPv4 address"),
        ("https://%31%32%37.0.0.1/", "host %31%32%37.0.0.1 is a non-canonical IPv4 address"),
        ("https://127.0.0.1/", "host 127.0.0.1 not in FRAMEHOOK_ASSET_HOSTS"),
        ("https://[fe80::1%25eth0]/", "host fe80::1%eth0 has an IPv6 zone id"),
        ("https://%65vil.com/", "host %65vil.com is not a valid host name"),
        ("https://apiframe.ai/", "host apiframe.ai not in FRAMEHOOK_ASSET_HOSTS"),
        ("https://cdn.apiframe.ai/x.png", None),
    ],
)
def test_check_url(url: str, reason: str | None) -> None:
    """Scheme, credentials, host notation and allow-list are checked in that order."""
    assert refusal(url, FetchPolicy()) == reason


def test_plain_http_when_allowed() -> None:
    """allow_http lets plain http through for allowed hosts only."""
    policy = FetchPolicy(allow_http=True)
    assert refusal("http://cdn.apiframe.ai/x", policy) is None
    assert refusal("http://evil.com/x", policy) == "host evil.com not in FRAMEHOOK_ASSET_HOSTS"


def test_a_listed_literal_ip_is_still_address_checked() -> None:
    """Listing 127.0.0.1 as a host does not allow loopback; an allowed network does."""
    listed = FetchPolicy(hosts=("127.0.0.1",))
    assert refusal("https://127.0.0.1/", listed) == "address 127.0.0.1 is loopback"
    allowed = FetchPolicy(hosts=("127.0.0.1",), allow_networks=("127.0.0.0/8",))
    assert refusal("https://127.0.0.1/", allowed) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "address 127.0.0.1 is loopback"),
        ("127.255.0.9", "address 127.255.0.9 is loopback"),
        ("10.1.2.3", "address 10.1.2.3 is private"),
        ("172.16.0.1", "address 172.16.0.1 is private"),
        ("192.168.1.1", "address 192.168.1.1 is private"),
        ("169.254.1.1", "address 169.254.1.1 is link-local"),
        ("100.64.0.1", "address 100.64.0.1 is carrier-grade NAT"),
        ("0.0.0.0", "address 0.0.0.0 is unspecified"),  # noqa: S104
        ("224.0.0.1", "address 224.0.0.1 is multicast"),
        ("255.255.255.255", "address 255.255.255.255 is broadcast"),
        ("240.0.0.1", "address 240.0.0.1 is reserved"),
        ("192.0.2.1", "address 192.0.2.1 is not globally routable"),
        ("169.254.169.254", "address 169.254.169.254 is a cloud metadata address"),
        ("100.100.100.200", "address 100.100.100.200 is a cloud metadata address"),
        ("168.63.129.16", "address 168.63.129.16 is a cloud metadata address"),
        ("fd00:ec2::254", "address fd00:ec2::254 is a cloud metadata address"),
        ("::", "address :: is unspecified"),
        ("::1", "address ::1 is loopback"),
        ("fe80::1", "address fe80::1 is link-local"),
        ("fe80::1%eth0", "address fe80::1%eth0 is link-local"),
        ("fc00::1", "address fc00::1 is private"),
        ("fd12:3456::1", "address fd12:3456::1 is private"),
        ("ff02::1", "address ff02::1 is multicast"),
        ("::ffff:8.8.8.8", "address ::ffff:8.8.8.8 is IPv4-mapped"),
        ("::ffff:127.0.0.1", "address ::ffff:127.0.0.1 is IPv4-mapped"),
        ("::a00:5", "address ::a00:5 is IPv4-compatible"),
        ("64:ff9b::a00:5", "address 64:ff9b::a00:5 embeds 10.0.0.5, which is private"),
        (
            "64:ff9b::a9fe:a9fe",
            "address 64:ff9b::a9fe:a9fe embeds 169.254.169.254, which is a cloud metadata address",
        ),
        ("2002:a00:5::1", "address 2002:a00:5::1 embeds 10.0.0.5, which is private"),
        (
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "address 2001:0:4136:e378:8000:63bf:80ff:fffe embeds 127.0.0.1, which is loopback",
        ),
        ("2001:db8::1", "address 2001:db8::1 is not globally routable"),
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
        ("64:ff9b::808:808", None),
        ("2002:808:808::1", None),
    ],
)
def test_address_refusal(address: str, reason: str | None) -> None:
    """Every non-public kind of address is refused, with its kind; public ones pass."""
    assert address_refusal(ipaddress.ip_address(address), NOTHING_ALLOWED) == reason


def test_allowed_networks_admit_private_addresses() -> None:
    """An allowed network admits the addresses it contains, and no others."""
    policy = FetchPolicy(allow_networks=("10.0.0.0/8", "fd00::/8"))
    assert address_refusal(ipaddress.ip_address("10.9.8.7"), policy) is None
    assert address_refusal(ipaddress.ip_address("fd12::1"), policy) is None
    assert address_refusal(ipaddress.ip_address("192.168.1.1"), policy) is not None


def test_allowed_v4_network_does_not_admit_its_v6_mapped_form() -> None:
    """127.0.0.0/8 allowed does not allow ::ffff:127.0.0.1: the address itself must be listed."""
    policy = FetchPolicy(allow_networks=("127.0.0.0/8",))
    assert address_refusal(ipaddress.ip_address("::ffff:127.0.0.1"), policy) is not None


def test_metadata_needs_its_own_single_address_network() -> None:
    """A wide allowed network does not admit a metadata address; a /32 naming it does."""
    metadata = ipaddress.ip_address("169.254.169.254")
    wide = FetchPolicy(allow_networks=("169.254.0.0/16",))
    assert address_refusal(ipaddress.ip_address("169.254.1.1"), wide) is None
    assert address_refusal(metadata, wide) is not None
    exact = FetchPolicy(allow_networks=("169.254.169.254/32",))
    assert address_refusal(metadata, exact) is None


def test_policy_normalises_its_entries() -> None:
    """Hosts are lower-cased, undotted and IDNA-encoded; networks printed canonically."""
    policy = FetchPolicy(
        hosts=(" CDN.Test. ", "*.Bücher.Example", "[::1]"), allow_networks=("10.0.0.0/8",)
    )
    assert policy.hosts == ("cdn.test", "*.xn--bcher-kva.example", "::1")
    assert policy.allow_networks == ("10.0.0.0/8",)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"allow_networks": ("10.0.0.0/33",)}, "FRAMEHOOK_ASSET_ALLOW_NETWORKS: '10.0.0.0/33'"),
        ({"allow_networks": ("not-a-cidr",)}, "is not a CIDR"),
        ({"allow_networks": ("10.0.0.5/8",)}, r"did you mean 10\.0\.0\.0/8"),
        ({"hosts": ("*",)}, "only a leading"),
        ({"hosts": ("cdn.*.com",)}, "only a leading"),
        ({"hosts": ("*.10.0.0.1",)}, "a wildcard needs a name"),
        ({"hosts": ("bad host",)}, "not a valid host name"),
        ({"max_redirects": -1}, "max_redirects"),
        ({"read_timeout": 0}, "read_timeout"),
    ],
)
def test_policy_rejects_what_it_cannot_understand(kwargs: dict[str, object], message: str) -> None:
    """A bad host, CIDR or number fails at construction with a clear ValueError."""
    with pytest.raises(ValueError, match=message):
        FetchPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_is_a_frozen_slotted_value() -> None:
    """FetchPolicy cannot be changed after construction and has no __dict__."""
    policy = FetchPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.allow_http = True  # type: ignore[misc]
    assert not hasattr(policy, "__dict__")
    assert policy == FetchPolicy(hosts=("*.APIFRAME.ai.",))


def test_policy_timeouts() -> None:
    """The policy's timeouts become the client's httpx.Timeout."""
    policy = FetchPolicy(connect_timeout=1, read_timeout=2, write_timeout=3, pool_timeout=4)
    assert policy.timeout() == httpx.Timeout(connect=1, read=2, write=3, pool=4)
