"""`framehook serve --tunnel`: a stub client on PATH (a script named `cloudflared` or `ngrok`
that prints what the real one prints) is started against serve's port, its URL is used and
shown, and it is stopped when serve stops; every way a client fails is one line."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver.cli.tunnel import TunnelError, TunnelKind, open_tunnel, tunnel_target_host
from tests.support.processes import Server, framehook_env, free_port, run_cli
from tests.support.waiting import wait_until

# What the clients print, as they print it (cloudflared on standard error, its quick-tunnel
# box not always padded right; ngrok v3 with --log=stdout --log-format=json, or logfmt).
STUB = """#!{python}
import json, os, signal, sys, time

kind = os.path.basename(sys.argv[0])
args = sys.argv[1:]
mode = os.environ.get("STUB_MODE", "url")
t = "2026-12-03T20:15:00Z"


def record(event):
    with open(os.environ["STUB_RECORD"], "a") as file:
        file.write(json.dumps({{"pid": os.getpid(), "event": event, "args": args}}) + "\\n")


def stopped(signum, frame):
    record(signal.Signals(signum).name)
    sys.exit(0)


signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "stubborn" else stopped)
signal.signal(signal.SIGINT, stopped)
record("started")
origin = args[args.index("--url") + 1] if kind == "cloudflared" else args[1]
url = os.environ.get("STUB_URL", origin)
if kind == "cloudflared":
    out = sys.stderr
    lines = [
        f"{{t}} INF Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare "
        "account, is a quick way to experiment and try it out. If you intend to use Tunnels in "
        "production you should use a pre-created named tunnel by following: "
        "https://developers.cloudflare.com/cloudflare-one/connections/connect-networks",
        f"{{t}} INF Requesting new quick Tunnel on trycloudflare.com...",
    ]
    if mode == "exit":
        lines.append(
            'failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": '
            "dial tcp: lookup api.trycloudflare.com: no such host"
        )
    elif mode != "silent":
        lines += [
            f"{{t}} INF +{{'-' * 92}}+",
            f"{{t}} INF |  Your quick Tunnel has been created! Visit it at (it may take some "
            "time to be reachable):  |",
            f"{{t}} INF |  {{url}}                                     |",
            f"{{t}} INF +{{'-' * 92}}+",
            f"{{t}} INF Registered tunnel connection connIndex=0 location=ams01 protocol=quic",
        ]
else:
    out = sys.stdout
    logfmt = os.environ.get("STUB_FORMAT") == "logfmt"
    lines = [
        't=2026-12-03T20:15:00+0000 lvl=info msg="no configuration paths supplied"'
        if logfmt
        else json.dumps({{"lvl": "info", "msg": "no configuration paths supplied", "t": t}})
    ]
    if mode == "exit":
        error = (
            "authentication failed: Usage of ngrok requires a verified account and "
            "authtoken.\\n\\nSign up for an account: https://dashboard.ngrok.com/signup\\r\\n"
            "\\r\\nERR_NGROK_4018\\r\\n"
        )
        lines.append(json.dumps(
            {{"err": error, "lvl": "eror", "msg": "failed to reconnect session", "t": t}}
        ))
        lines += ["ERROR:  authentication failed: Usage of ngrok requires a verified account",
                  "ERROR:  ", "ERROR:  ERR_NGROK_4018", "ERROR:  "]
    elif mode != "silent":
        lines.append(
            't=2026-12-03T20:15:01+0000 lvl=info msg="started tunnel" obj=tunnels '
            f"name=command_line addr={{origin}} url={{url}}"
            if logfmt
            else json.dumps({{
                "addr": origin, "lvl": "info", "msg": "started tunnel",
                "name": "command_line", "obj": "tunnels", "t": t, "url": url,
            }})
        )
for line in lines:
    print(line, file=out, flush=True)
if mode == "exit":
    sys.exit(1)
while True:
    time.sleep(0.05)
"""


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    """A directory holding stub `cloudflared` and `ngrok` executables."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for kind in ("cloudflared", "ngrok"):
        script = directory / kind
        script.write_text(STUB.format(python=sys.executable))
        script.chmod(0o755)
    return directory


def stub_env(tmp_path: Path, stubs: Path, **extra: str) -> dict[str, str]:
    """framehook's test environment with the stubs first on PATH, recording to a file."""
    extra.setdefault("PATH", f"{stubs}{os.pathsep}{os.environ.get('PATH', '')}")
    return framehook_env(
        STUB_RECORD=str(tmp_path / "record.jsonl"),
        FRAMEHOOK_DATABASE_URL=f"sqlite:///{tmp_path / 'framehook.db'}",
        FRAMEHOOK_STORAGE_URL=str(tmp_path / "assets"),
        **extra,
    )


def events(tmp_path: Path) -> list[dict[str, Any]]:
    """What the stub clients recorded: each start (with its arguments) and each stop."""
    path = tmp_path / "record.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def in_process_stubs(tmp_path: Path, stubs: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stubs first on this process's PATH, recording to ``tmp_path``."""
    monkeypatch.setenv("PATH", f"{stubs}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("STUB_RECORD", str(tmp_path / "record.jsonl"))
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "stop", "args", "exit_code"),
    [
        ("cloudflared", signal.SIGTERM, ["tunnel", "--no-autoupdate", "--url"], 128 + 15),
        ("ngrok", signal.SIGINT, ["http"], 130),
    ],
)
def test_serve_runs_the_tunnel_uses_its_url_and_stops_it(
    tmp_path: Path, stubs: Path, kind: str, stop: signal.Signals, args: list[str], exit_code: int
) -> None:
    """serve starts the client against its port, prints the public and webhook URLs, trusts
    the tunnel's forwarded headers, and stops the client when it is stopped itself."""
    server = Server(stub_env(tmp_path, stubs), tmp_path, ["--no-worker", "--tunnel", kind])
    try:
        server.wait_ready()
        output = server.log.read_text()
        (started,) = events(tmp_path)
        origin = f"http://127.0.0.1:{server.port}"
        assert started["args"][: len(args)] == args
        assert origin in started["args"]
        # The stub's "public" URL is the origin itself, so it really leads to this receiver.
        assert f"public URL {origin}" in output
        assert f"{origin}/webhooks/apiframe" in output
        assert httpx.get(f"{origin}/healthz").json() == {"ok": True}
        # The client connects from loopback: its X-Forwarded-For names the real sender.
        server.post_webhook(b"{}", headers={"X-Forwarded-For": "203.0.113.7"})
        wait_until(lambda: "203.0.113.7" in server.log.read_text(), timeout=10)
    finally:
        server.process.send_signal(stop)
        server.process.wait(30)
        code = server.stop()
    assert code == exit_code, server.log.read_text()
    stopped = events(tmp_path)[1:]
    assert [e["pid"] for e in stopped] == [started["pid"]]
    assert not alive(started["pid"])


@pytest.mark.slow
def test_an_explicit_no_proxy_headers_wins_over_the_tunnel(tmp_path: Path, stubs: Path) -> None:
    """--no-proxy-headers with --tunnel: forwarded headers stay untrusted, as asked."""
    args = ["--no-worker", "--tunnel", "cloudflared", "--no-proxy-headers"]
    server = Server(stub_env(tmp_path, stubs), tmp_path, args)
    try:
        server.wait_ready()
        server.post_webhook(b"{}", headers={"X-Forwarded-For": "203.0.113.7"})
        wait_until(lambda: '"remote":"127.0.0.1"' in server.log.read_text(), timeout=10)
    finally:
        server.stop()
    assert "203.0.113.7" not in server.log.read_text()


def test_a_missing_client_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """No such client on PATH: one error line naming it and where to get it; exit 2."""
    env = stub_env(tmp_path, tmp_path / "empty", PATH=str(tmp_path / "empty"))
    for kind, where in (("cloudflared", "developers.cloudflare.com"), ("ngrok", "ngrok.com")):
        result = run_cli(["serve", "--port", str(free_port()), "--tunnel", kind], env, tmp_path)
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"error: {kind} is not installed")
        assert where in line


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("cloudflared", 'failed to request quick Tunnel: Post "https://api.trycloudflare.com'),
        ("ngrok", "failed to reconnect session: authentication failed: Usage of ngrok"),
    ],
)
def test_a_client_exiting_early_is_one_line_with_its_last_words(
    tmp_path: Path, stubs: Path, kind: str, said: str
) -> None:
    """The client exits before printing a URL: serve exits 2 with one line saying so and
    quoting the client's error."""
    env = stub_env(tmp_path, stubs, STUB_MODE="exit")
    result = run_cli(["serve", "--port", str(free_port()), "--tunnel", kind], env, tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert f"error: {kind} exited (code 1) before printing a public URL: {said}" in line
    assert "Traceback" not in result.stderr


def test_no_url_in_time_is_an_error_and_the_client_is_stopped(
    in_process_stubs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that prints no URL within the timeout is stopped, and the error quotes it."""
    monkeypatch.setenv("STUB_MODE", "silent")
    started = time.monotonic()
    with (
        pytest.raises(TunnelError, match=r"cloudflared printed no public URL within 0\.5 s; "),
        open_tunnel("cloudflared", free_port(), timeout=0.5),
    ):
        pass
    assert time.monotonic() - started < 5
    first, stop = events(in_process_stubs)
    assert stop == {**first, "event": "SIGTERM"}
    assert not alive(first["pid"])


@pytest.mark.parametrize(
    ("kind", "url", "form"),
    [
        ("cloudflared", "https://four-dashed-word-url.trycloudflare.com", "text"),
        ("ngrok", "https://ab12-203-0-113-7.ngrok-free.app", "json"),
        ("ngrok", "https://ab12-203-0-113-7.ngrok-free.app", "logfmt"),
    ],
)
def test_the_real_url_formats_are_read(
    in_process_stubs: Path, monkeypatch: pytest.MonkeyPatch, kind: TunnelKind, url: str, form: str
) -> None:
    """The URL is read from the line each client prints it on, not from the docs link
    cloudflared prints first; ngrok's JSON and logfmt logs alike."""
    monkeypatch.setenv("STUB_URL", url)
    monkeypatch.setenv("STUB_FORMAT", form)
    port = free_port()
    with open_tunnel(kind, port) as public:
        assert public == url
        (started,) = events(in_process_stubs)
        assert f"http://127.0.0.1:{port}" in started["args"]
    assert not alive(started["pid"])


def test_the_client_is_stopped_when_the_block_fails(in_process_stubs: Path) -> None:
    """serve failing to start inside the block still stops the client."""
    with pytest.raises(RuntimeError), open_tunnel("ngrok", free_port()):
        raise RuntimeError("create_app failed")
    first, stop = events(in_process_stubs)
    assert stop["pid"] == first["pid"]
    assert stop["event"] == "SIGTERM"


@pytest.mark.slow
def test_a_client_ignoring_sigterm_is_killed(
    in_process_stubs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that ignores SIGTERM is killed after the grace period."""
    monkeypatch.setenv("STUB_MODE", "stubborn")
    with open_tunnel("cloudflared", free_port()):
        (started,) = events(in_process_stubs)
    assert not alive(started["pid"])
    assert events(in_process_stubs) == [started]


@pytest.mark.parametrize(
    ("bound", "target"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "127.0.0.1"),  # noqa: S104 (a bind address, compared)
        ("::", "127.0.0.1"),
        ("localhost", "127.0.0.1"),
        ("::1", "::1"),
        ("192.168.1.5", "192.168.1.5"),
    ],
)
def test_the_tunnel_forwards_to_the_address_serve_is_bound_to(bound: str, target: str) -> None:
    """A wildcard or loopback bind is reached on loopback (IPv4 unless bound to ::1 alone), a
    specific interface on itself: that is also the address proxy headers are trusted from."""
    assert tunnel_target_host(bound) == target
