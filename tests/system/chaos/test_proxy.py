"""The chaos proxy: round robin over its upstreams, skipping one that refuses connections."""

from __future__ import annotations

import httpx
import pytest

from tests.support.cdn import FakeCdn, Route
from tests.support.processes import free_port
from tests.system.chaos.proxy import RoundRobinProxy


def test_connections_alternate_between_upstreams() -> None:
    """Each new connection goes to the next upstream; a keep-alive connection stays put."""
    with FakeCdn() as first, FakeCdn() as second:
        for cdn in (first, second):
            cdn.route("/x", Route(b"hello"))
        with RoundRobinProxy([first.port, second.port]) as proxy:
            for _ in range(4):
                assert httpx.get(f"{proxy.url}/x").content == b"hello"
            with httpx.Client(base_url=proxy.url) as client:
                for _ in range(3):
                    assert client.get("/x").content == b"hello"
    assert (first.hits["/x"], second.hits["/x"]) in {(5, 2), (2, 5)}
    assert sorted(proxy.connections.values()) == [2, 3]


def test_an_upstream_that_refuses_is_skipped() -> None:
    """A dead upstream (nothing listens on its port) costs a skip, never a failed request."""
    dead = free_port()
    with FakeCdn() as live:
        live.route("/x", Route(b"hello"))
        with RoundRobinProxy([dead, live.port]) as proxy:
            for _ in range(4):
                assert httpx.get(f"{proxy.url}/x").content == b"hello"
    assert live.hits["/x"] == 4
    assert proxy.skipped[dead] >= 2
    assert proxy.connections == {live.port: 4}


def test_with_every_upstream_down_the_client_is_hung_up_on() -> None:
    """No upstream accepts: the client's connection is closed without an answer (the sender
    then retries, as Apiframe would)."""
    with (
        RoundRobinProxy([free_port(), free_port()]) as proxy,
        pytest.raises(httpx.TransportError),
    ):
        httpx.get(f"{proxy.url}/x")
    assert proxy.dropped == 1
