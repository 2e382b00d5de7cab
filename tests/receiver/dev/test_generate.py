"""`framehook generate` against the fake Apiframe and a real `framehook serve`."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import uvicorn
from rich.console import Console

from receiver import Settings
from receiver.dev.fakeapi import Behaviour, create_fake_apiframe
from receiver.dev.generate import Follow, build_request, run_generate
from tests.support.processes import Server, framehook_env, free_port, run_cli
from tests.support.webhooks import API_KEY


@dataclass(frozen=True)
class Stack:
    """The fake Apiframe and a receiver that records its webhooks, sharing one database."""

    api_url: str
    receiver_url: str
    env: dict[str, str]
    cwd: Path


@pytest.fixture(scope="module")
def fake_api() -> Iterator[str]:
    """The fake Apiframe, quick, served by uvicorn in a thread; yields its URL."""
    app = create_fake_apiframe(API_KEY, behaviour=Behaviour(step_seconds=0.1))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        assert server.started, "the fake Apiframe did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def stack(fake_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`framehook serve` capturing the fake's files from loopback into a temporary directory."""
    cwd = tmp_path_factory.mktemp("generate")
    env = framehook_env(
        FRAMEHOOK_DATABASE_URL=f"sqlite:///{cwd / 'framehook.db'}",
        FRAMEHOOK_STORAGE_URL=str(cwd / "assets"),
        FRAMEHOOK_ASSET_HOSTS="127.0.0.1",
        FRAMEHOOK_ASSET_ALLOW_HTTP="true",
        FRAMEHOOK_ASSET_ALLOW_NETWORKS="127.0.0.0/8",
        FRAMEHOOK_APIFRAME_URL=fake_api,
    )
    server = Server(env, cwd)
    try:
        server.wait_ready()
        yield Stack(fake_api, server.url, env, cwd)
    finally:
        server.stop()


def generate(stack: Stack, *args: str) -> tuple[int, str, str]:
    result = run_cli(
        ["generate", *args, "--public-url", stack.receiver_url, "--api-url", stack.api_url],
        stack.env,
        stack.cwd,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr


def test_generate_follows_a_job_until_its_files_are_stored(stack: Stack) -> None:
    """A Midjourney job ends COMPLETED, exit 0, and the printed storage URIs are files on disk."""
    code, out, err = generate(stack, "images/generate", "--model", "midjourney", "--prompt", "x")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("job ")
    uris = [line for line in lines if line.startswith("file://")]
    assert len(uris) == 5  # four images and the grid
    for uri in uris:
        path = Path(unquote(urlsplit(uri).path))
        assert path.is_file()
        assert path.read_bytes().startswith(b"\x89PNG")
    assert "COMPLETED" in err


def test_a_failing_prompt_shows_failed_and_exits_1(stack: Stack) -> None:
    """A job Apiframe fails is shown FAILED with its error, and the command exits 1."""
    code, out, err = generate(stack, "images/generate", "--model", "flux-2-pro", "--prompt", "fail")
    assert code == 1
    assert "FAILED" in err
    assert "content policy violation" in err
    assert "file://" not in out


def test_no_wait_prints_the_job_id_and_returns(stack: Stack) -> None:
    """--no-wait submits the job, prints its id and exits 0 without following it."""
    code, out, _err = generate(
        stack, "music/generate", "--model", "suno", "--prompt", "x", "--no-wait"
    )
    assert code == 0
    assert out.startswith("job ")


def test_without_a_public_url_it_exits_2_explaining_a_tunnel(tmp_path: Path) -> None:
    """No --public-url nor FRAMEHOOK_PUBLIC_URL: exit 2 before submitting, naming a tunnel."""
    result = run_cli(
        ["generate", "images/generate", "--model", "midjourney", "--prompt", "x"],
        framehook_env(),
        tmp_path,
    )
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "--public-url" in message
    assert "FRAMEHOOK_PUBLIC_URL" in message
    assert "tunnel" in message
    assert "Traceback" not in result.stderr


def test_an_unreachable_api_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    """Nothing listens at --api-url: exit 1 saying it could not reach it, no traceback."""
    api_url = f"http://127.0.0.1:{free_port()}"
    result = run_cli(
        [
            "generate",
            "images/generate",
            "--prompt",
            "x",
            "--public-url",
            "https://example.test",
            "--api-url",
            api_url,
        ],
        framehook_env(),
        tmp_path,
    )
    assert result.returncode == 1
    assert f"could not reach {api_url}" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_a_refused_api_key_exits_2(stack: Stack) -> None:
    """The API answers 401 to a wrong key: a configuration error, exit 2 with its message."""
    env = {**stack.env, "APIFRAME_API_KEY": "afk_wrong"}
    result = run_cli(
        ["generate", "images/generate", "--prompt", "x", "--public-url", stack.receiver_url],
        env,
        stack.cwd,
    )
    assert result.returncode == 2
    assert "Invalid or missing API key" in result.stderr


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("x", "Apiframe completed the job, but no completed webhook reached"),
        ("fail", "job FAILED: Provider returned an error"),
    ],
)
def test_without_webhooks_it_polls_the_api_and_says_none_came(
    fake_api: str, tmp_path: Path, prompt: str, expected: str
) -> None:
    """No webhook reaches the database: the job is polled, and the end says none came (exit 1)."""
    settings = Settings(
        api_key=API_KEY,
        apiframe_url=fake_api,
        database_url=f"sqlite:///{tmp_path / 'absent.db'}",
    )
    request = build_request(
        "images/generate",
        model="midjourney",
        prompt=prompt,
        params=[],
        public_url=f"http://127.0.0.1:{free_port()}",  # nobody listens: webhooks are lost
    )
    out, err = io.StringIO(), io.StringIO()
    follow = Follow(timeout=20, poll_seconds=0.2, quiet_seconds=0.3, grace_seconds=0.3)
    code = run_generate(
        settings,
        API_KEY,
        request,
        follow,
        out=Console(file=out, width=200),
        err=Console(file=err, width=200),
    )
    assert code == 1
    assert expected in err.getvalue()
    assert f"no database at {tmp_path / 'absent.db'}" in err.getvalue()
    assert not (tmp_path / "absent.db").exists()
