"""What an unauthenticated client can hold of a real ``framehook serve``: memory, connections,
time. Raw sockets play the hostile clients; signed webhooks must keep being answered."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.processes import Server, framehook_env
from tests.support.webhooks import signed_headers, webhook_body

_FAKE_SIGNATURE = "sha256=" + "ab" * 32
MiB = 1_048_576


def _rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _start(tmp_path: Path, **settings: str) -> Server:
    env = framehook_env(
        FRAMEHOOK_DATABASE_URL=f"sqlite:///{tmp_path / 'fh.db'}",
        FRAMEHOOK_STORAGE_URL="memory://",
        FRAMEHOOK_HANDLERS="",
        **settings,
    )
    server = Server(env, tmp_path)
    server.wait_ready()
    return server


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Server]]:
    """Servers started by the test, stopped after it."""
    servers: list[Server] = []
    yield servers
    for server in servers:
        server.stop()


def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.setblocking(False)
    return sock


def _request_head(length: int, signature: str | None = _FAKE_SIGNATURE) -> bytes:
    lines = [
        "POST /webhooks/apiframe HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {length}",
    ]
    if signature is not None:
        lines.append(f"X-Webhook-Signature: {signature}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _push(sock: socket.socket, data: bytes) -> int:
    """Send what the connection takes now, without blocking; the bytes sent."""
    try:
        return sock.send(data)
    except (BlockingIOError, ConnectionError):
        return 0


def _closed_by_server(sock: socket.socket, timeout: float) -> tuple[bool, bytes]:
    """Read until the server closes (True) or ``timeout`` passes (False); what it sent."""
    sock.setblocking(True)
    sock.settimeout(0.2)
    received = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionError:
            return True, received
        if not chunk:
            return True, received
        received += chunk
    return False, received


def _signed_latencies(server: Server, stop: threading.Event, out: list[tuple[int, float]]) -> None:
    with httpx.Client(timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            body = orjson.dumps(webhook_body("progress", jobId=f"held-{n}", progress=n % 100))
            started = time.perf_counter()
            response = client.post(
                f"{server.url}/webhooks/apiframe", content=body, headers=signed_headers(body)
            )
            out.append((response.status_code, time.perf_counter() - started))
            time.sleep(0.05)


@pytest.mark.slow
def test_held_half_sent_bodies_use_bounded_memory_and_are_cut_off(
    tmp_path: Path, started: list[Server]
) -> None:
    """300 clients declaring 1 MiB bodies (the limit raised to allow them) and never sending
    the last byte grow the receiver's RSS by well under 100 MiB, are all cut off by the body
    deadline, and signed webhooks are answered 202 all the while."""
    server = _start(tmp_path, FRAMEHOOK_MAX_BODY_BYTES=str(MiB), FRAMEHOOK_BODY_TIMEOUT_SECONDS="6")
    started.append(server)
    for n in range(20):  # warm up: the baseline includes a served webhook's allocations
        body = orjson.dumps(webhook_body("progress", jobId=f"warm-{n}", progress=1))
        assert server.post_webhook(body).status_code == 202
    baseline = _rss(server.process.pid)

    stop = threading.Event()
    latencies: list[tuple[int, float]] = []
    signed = threading.Thread(target=_signed_latencies, args=(server, stop, latencies))
    signed.start()
    sockets: list[socket.socket] = []
    try:
        sockets.extend(_connect(server) for _ in range(300))
        body = b"x" * (MiB - 1)
        sent = [0] * len(sockets)
        for sock in sockets:
            _push(sock, _request_head(MiB))
        for _ in range(20):  # feed them all what they will take, never the last byte
            for i, sock in enumerate(sockets):
                if sent[i] < len(body):
                    sent[i] += _push(sock, body[sent[i] : sent[i] + 256 * 1024])
            time.sleep(0.05)
        peak = _rss(server.process.pid)
        results = [_closed_by_server(sock, timeout=15) for sock in sockets]
    finally:
        stop.set()
        signed.join()
        for sock in sockets:
            sock.close()
    grown = (peak - baseline) / MiB
    print(  # noqa: T201 - the figure the README quotes
        f"RSS {baseline / MiB:.0f} MiB -> {peak / MiB:.0f} MiB with 300 held 1 MiB bodies"
    )
    assert grown < 100, f"RSS grew by {grown:.0f} MiB"
    assert sum(sent) > 16 * MiB, "the clients should have pushed real bytes"
    assert all(closed for closed, _ in results), "every held connection is cut off"
    refused = sum(1 for _, data in results if data.startswith(b"HTTP/1.1 503"))
    timed_out = sum(1 for _, data in results if data.startswith(b"HTTP/1.1 408"))
    assert refused > 0, "some were refused before their body (the unverified-bytes cap)"
    assert timed_out > 0, "some were answered 408 at the body deadline"
    assert latencies, "signed webhooks were sent meanwhile"
    assert all(status == 202 for status, _ in latencies), latencies[:5]


def test_a_header_dribbler_and_an_idle_connection_are_closed(
    tmp_path: Path, started: list[Server]
) -> None:
    """A client sending its headers a byte at a time is answered 408 and closed at the header
    deadline; one that sends nothing at all is closed too."""
    server = _start(tmp_path, FRAMEHOOK_HEADER_TIMEOUT_SECONDS="2")
    started.append(server)
    idle = _connect(server)
    dribbler = _connect(server)
    head = _request_head(100)
    begun = time.monotonic()
    closed_at = None
    for byte in head:
        if _push(dribbler, bytes([byte])) == 0:
            closed_at = time.monotonic()
            break
        time.sleep(0.25)
        if time.monotonic() - begun > 8:
            break
    closed, answer = _closed_by_server(dribbler, timeout=2)
    if not closed:
        dribbler.close()
        idle.close()
    assert closed, "the dribbler is still connected"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:40]
    assert (closed_at or time.monotonic()) - begun < 6
    idle_closed, _ = _closed_by_server(idle, timeout=3)
    idle.close()
    dribbler.close()
    assert idle_closed, "a connection that never sent a byte is still open"
    body = orjson.dumps(webhook_body("progress", jobId="after-dribble", progress=1))
    assert server.post_webhook(body).status_code == 202


def test_connections_past_the_cap_get_503_until_some_close(
    tmp_path: Path, started: list[Server]
) -> None:
    """With 20 connections open (the cap), a request on a new one is answered 503 with
    Retry-After and closed; once they close, webhooks are accepted again."""
    server = _start(tmp_path, FRAMEHOOK_MAX_CONNECTIONS="20")
    started.append(server)
    held = [_connect(server) for _ in range(20)]
    time.sleep(0.3)
    body = orjson.dumps(webhook_body("progress", jobId="capped", progress=1))
    try:
        refused = server.post_webhook(body)
    finally:
        for sock in held:
            sock.close()
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["reason"] == "too_many_connections"
    time.sleep(0.3)
    assert server.post_webhook(body).status_code == 202


def test_a_request_without_a_usable_signature_is_refused_before_its_body(
    tmp_path: Path, started: list[Server]
) -> None:
    """A request declaring a 64 KiB body with no signature header (or a malformed one) is
    answered 401 at once, without the receiver waiting for a byte of the body, and the
    connection is closed so the body that would follow is never read."""
    server = _start(tmp_path)
    started.append(server)
    for signature in (None, "sha256=nothex"):
        sock = _connect(server)
        _push(sock, _request_head(65_536, signature))
        closed_or_answered = b""
        deadline = time.monotonic() + 3
        sock.setblocking(True)
        sock.settimeout(0.2)
        while time.monotonic() < deadline and b"\r\n\r\n" not in closed_or_answered:
            try:
                closed_or_answered += sock.recv(4096)
            except TimeoutError:
                continue
        closed, _ = _closed_by_server(sock, timeout=3)
        sock.close()
        assert closed_or_answered.startswith(b"HTTP/1.1 401"), closed_or_answered[:40]
        assert b"connection: close" in closed_or_answered.lower()
        assert closed, "the server stops reading a body it refused: it closes the connection"
