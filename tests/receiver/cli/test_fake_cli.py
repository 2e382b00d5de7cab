"""``framehook fake-apiframe`` as a user runs it: a real process, a real loopback listener."""

from __future__ import annotations

import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from receiver.apiframe.signatures import Verifier
from tests.support.processes import framehook_env, run_cli


@dataclass(frozen=True)
class Fake:
    """The running fake: what it printed."""

    url: str
    api_key: str


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Fake]:
    """``framehook fake-apiframe --port 0`` in a child process, fast steps, stopped after."""
    stderr = (tmp_path / "fake.err").open("wb")
    args = ["fake-apiframe", "--port", "0", "--seed", "7", "--step-seconds", "0.01"]
    process = subprocess.Popen(
        [sys.executable, "-m", "receiver", *args],
        env=framehook_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    try:
        assert process.stdout is not None
        first, second = process.stdout.readline(), process.stdout.readline()
        log = (tmp_path / "fake.err").read_text()
        assert first.startswith("Fake Apiframe listening on http://127.0.0.1:"), first + log
        assert second.startswith("API key: afk_"), second + log
        yield Fake(first.split(" on ", 1)[1].strip(), second.split(": ", 1)[1].strip())
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
        stderr.close()


@pytest.fixture
def listener() -> Iterator[tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]]:
    """A loopback HTTP server answering 204 to every POST; its URL and what it received."""
    received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.put(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Silent: the test reads the queue, not the log."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_a_job_on_the_standalone_fake_sends_its_signed_webhook_to_loopback(
    fake: Fake, listener: tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]
) -> None:
    """With the printed URL and key, a job whose webhookUrl is a loopback listener is accepted
    and its completed webhook arrives there, signed with that key."""
    hook, received = listener
    response = httpx.post(
        f"{fake.url}/v2/images/generate",
        headers={"X-API-Key": fake.api_key},
        json={"model": "midjourney", "prompt": "a lighthouse", "webhookUrl": hook},
    )
    assert response.status_code == 202, response.text
    headers, body = received.get(timeout=15)
    assert headers["x-webhook-event"] == "completed"
    Verifier([fake.api_key]).verify(headers["x-webhook-signature"], body)
    assert response.json()["jobId"] in body.decode()


def test_the_standalone_fake_refuses_a_public_webhook_url(fake: Fake) -> None:
    """A webhookUrl naming a public address is a 400 in the spec's ValidationError shape,
    keyed by the field's JSON path."""
    response = httpx.post(
        f"{fake.url}/v2/images/generate",
        headers={"X-API-Key": fake.api_key},
        json={"model": "midjourney", "prompt": "a lighthouse", "webhookUrl": "https://8.8.8.8/h"},
    )
    assert response.status_code == 400, response.text
    details = response.json()["details"]
    assert list(details) == ["webhookUrl"]
    assert "public address 8.8.8.8" in details["webhookUrl"][0]


def test_a_taken_port_is_one_error_line(tmp_path: Path) -> None:
    """A port someone already listens on: exit 2, one ``error:`` line naming it, no
    traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli(["fake-apiframe", "--port", str(port)], framehook_env(), tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "error: --port 70000 is not a TCP port"),
        (["--api-key", " "], "error: --api-key must not be empty"),
        (["--step-seconds", "-1"], "error: --step-seconds: step_seconds must not be negative"),
    ],
)
def test_a_bad_option_is_one_error_line(tmp_path: Path, args: list[str], message: str) -> None:
    """A bad value for an option: exit 2 and one ``error:`` line saying what is wrong."""
    result = run_cli(["fake-apiframe", *args], framehook_env(), tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr
