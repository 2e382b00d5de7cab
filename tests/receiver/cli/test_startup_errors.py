"""Start-up mistakes as a user meets them: the real ``framehook`` process, one ``error:`` line
on standard error naming what to change, never a traceback."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from receiver.settings import variable_for
from tests.support.mounts import read_only
from tests.support.processes import Server, framehook_env, run_cli
from tests.support.webhooks import sample, signed_headers

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"
REFUSED = (
    "error: cannot connect to PostgreSQL at 127.0.0.1:1: connection refused "
    "(check FRAMEHOOK_DATABASE_URL, and that the server is running)"
)
NO_DRIVER = (
    "error: postgresql:// needs the PostgreSQL driver (psycopg), which is not installed: "
    "pip install 'framehook[postgres]'"
)


def one_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The single line a failed start printed (after checking it failed with ``code``)."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [["serve", "--port", "0"], ["db", "upgrade"], ["worker"]],
    ids=["serve", "db-upgrade", "worker"],
)
def test_a_missing_postgres_driver_names_the_extra(tmp_path: Path, args: list[str]) -> None:
    """A postgresql:// URL without psycopg installed: one line naming framehook[postgres]."""
    env = framehook_env(FRAMEHOOK_DATABASE_URL=UNREACHABLE)
    assert one_error(run_cli(args, env, tmp_path, missing="psycopg")) == NO_DRIVER


@pytest.mark.parametrize(
    "args",
    [["serve", "--port", "0"], ["db", "upgrade"], ["worker"]],
    ids=["serve", "db-upgrade", "worker"],
)
def test_an_unreachable_postgres_is_one_line_naming_host_port_and_setting(
    tmp_path: Path, args: list[str]
) -> None:
    """Nobody listening at the URL's host:port: one line saying so, exit 2, nothing started."""
    result = run_cli(args, framehook_env(FRAMEHOOK_DATABASE_URL=UNREACHABLE), tmp_path)
    assert one_error(result) == REFUSED


def test_a_port_in_use_is_found_before_anything_starts(tmp_path: Path) -> None:
    """Another server on the port: one line naming port and host, before any migration (no
    database file is created)."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = run_cli(["serve", "--port", str(port)], framehook_env(), tmp_path)
    assert one_error(result) == (
        f"error: port {port} on 127.0.0.1 is in use: stop the other server or pass --port"
    )
    assert not (tmp_path / "framehook-data" / "framehook.db").exists()


def test_a_storage_url_whose_extra_is_missing_names_the_extra(tmp_path: Path) -> None:
    """s3:// without obstore: the message keeps its ``[s3]`` (printed as text, not markup)."""
    env = framehook_env(FRAMEHOOK_STORAGE_URL="s3://bucket/prefix")
    result = run_cli(["serve", "--port", "0"], env, tmp_path, missing="obstore")
    assert one_error(result) == "error: s3:// storage needs obstore: pip install 'framehook[s3]'"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["serve"],
            {"FRAMEHOOK_MAX_BODY_BYTES": "-1"},
            "error: invalid FRAMEHOOK_MAX_BODY_BYTES: Input should be greater than or equal "
            "to 1024",
        ),
        (
            ["serve"],
            {"FRAMEHOOK_PORT": "eighty"},
            "error: invalid FRAMEHOOK_PORT: Input should be a valid integer, unable to parse "
            "string as an integer",
        ),
        (
            ["serve", "--port", "70000"],
            {},
            "error: invalid --port: Input should be less than or equal to 65535",
        ),
        (
            ["worker", "--concurrency", "5000"],
            {},
            "error: invalid --concurrency: Input should be less than or equal to 1000",
        ),
        (
            ["serve"],
            {"FRAMEHOOK_ASSET_HOSTS": "cdn.example.com, exa mple.com"},
            "error: invalid FRAMEHOOK_ASSET_HOSTS: 'exa mple.com': host exa mple.com is not a "
            "valid host name",
        ),
        (
            ["worker"],
            {"FRAMEHOOK_ASSET_ALLOW_NETWORKS": "10.0.0.1/8"},
            "error: invalid FRAMEHOOK_ASSET_ALLOW_NETWORKS: '10.0.0.1/8' has host bits set "
            "(did you mean 10.0.0.0/8?)",
        ),
    ],
    ids=["variable", "variable-type", "flag", "flag-named-otherwise", "asset-host", "network"],
)
def test_a_bad_setting_is_named_as_the_user_wrote_it(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    """A bad value is named by its environment variable or its flag, not the field behind."""
    assert one_error(run_cli(args, framehook_env(**env), tmp_path)) == message


def test_a_setting_with_its_own_variable_is_named_by_it() -> None:
    """The API key is APIFRAME_API_KEY (its alias), the others FRAMEHOOK_<NAME>."""
    assert variable_for("api_key") == "APIFRAME_API_KEY"
    assert variable_for("max_body_bytes") == "FRAMEHOOK_MAX_BODY_BYTES"


@pytest.mark.parametrize("args", [["serve", "--port", "0"], ["worker"]], ids=["serve", "worker"])
def test_an_unwritable_storage_directory_stops_the_start(
    tmp_path: Path, disk: Path, args: list[str]
) -> None:
    """Files would go to a read-only filesystem (root cannot write there either): one line."""
    read_only(disk)
    env = framehook_env(FRAMEHOOK_STORAGE_URL=str(disk))
    line = one_error(run_cli(args, env, tmp_path))
    assert re.fullmatch(
        rf"error: cannot store captured files: local storage {re.escape(str(disk))}: writing "
        r"\.framehook-doctor/probe-[0-9a-f]{32}/object: the filesystem is read-only \(EROFS\): "
        r"mount it read-write, or set FRAMEHOOK_STORAGE_URL to another place",
        line,
    ), line


def test_an_unknown_framehook_variable_is_warned_about_with_the_closest_name(
    tmp_path: Path,
) -> None:
    """A misspelt FRAMEHOOK_ variable (environment or .env) gets one warning line each with
    the real name; the download handler's and the test suite's own variables get none."""
    (tmp_path / ".env").write_text("FRAMEHOOK_HANDLRES=download\n")
    env = framehook_env(
        FRAMEHOOK_DATABSE_URL="sqlite:///elsewhere.db",
        FRAMEHOOK_ASSET_MAX_BYTES="1000000",
        FRAMEHOOK_TEST_ANYTHING="1",
    )
    url = f"sqlite:///{tmp_path / 'fh.db'}"
    result = run_cli(["db", "upgrade", "--database-url", url], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[:2] == [
        "warning: FRAMEHOOK_DATABSE_URL is not a framehook setting; it is ignored (did you "
        "mean FRAMEHOOK_DATABASE_URL?)",
        "warning: FRAMEHOOK_HANDLRES is not a framehook setting; it is ignored (did you mean "
        "FRAMEHOOK_HANDLERS?)",
    ]
    assert "ASSET" not in result.stderr
    assert "TEST" not in result.stderr


def _log(server: Server) -> list[dict[str, object]]:
    return [
        json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")
    ]


def test_serve_logs_the_dashboard_url_with_a_generated_token_and_no_alembic_plugins(
    tmp_path: Path,
) -> None:
    """Without FRAMEHOOK_ADMIN_TOKEN the start logs an absolute dashboard link carrying the
    new token, which opens /api; of Alembic, the migrations run are logged, not its plugins
    nor its context."""
    server = Server(framehook_env(), tmp_path, ["--no-worker"])
    try:
        server.wait_ready()
        lines = _log(server)
        (generated,) = [line for line in lines if line["event"] == "admin token generated"]
        dashboard = str(generated["dashboard"])
        assert dashboard == f"{server.url}/#token={generated['bearer']}"
        token = urlsplit(dashboard).fragment.removeprefix("token=")
        answer = httpx.get(f"{server.url}/api/jobs", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
    finally:
        server.stop()
    migrations = [
        line["event"] for line in lines if line.get("logger") == "alembic.runtime.migration"
    ]
    assert migrations
    assert all(str(event).startswith("Running upgrade") for event in migrations), migrations
    assert not [line for line in lines if line.get("logger") == "alembic.runtime.plugins"]
    assert "setup plugin" not in server.log.read_text()


@pytest.mark.parametrize(
    ("log_format", "public_url", "expected"),
    [
        ("console", None, "{url}/#token=configured-token-123"),
        ("json", None, "{url}/"),
        ("json", "https://hooks.example.com/", "https://hooks.example.com/"),
    ],
    ids=["console", "json", "public-url"],
)
def test_serve_logs_the_dashboard_url_with_a_configured_token_only_in_console_logs(
    tmp_path: Path, log_format: str, public_url: str | None, expected: str
) -> None:
    """A configured token is a long-lived secret: a terminal's log shows the signed-in link,
    a JSON log (shipped elsewhere) the bare address; FRAMEHOOK_PUBLIC_URL is its base."""
    env = framehook_env(
        FRAMEHOOK_ADMIN_TOKEN="configured-token-123", FRAMEHOOK_LOG_FORMAT=log_format
    )
    if public_url:
        env["FRAMEHOOK_PUBLIC_URL"] = public_url
    server = Server(env, tmp_path, ["--no-worker"])
    try:
        server.wait_ready()
    finally:
        server.stop()
    want = expected.format(url=server.url)
    log = server.log.read_text()
    if log_format == "json":
        (line,) = [x for x in _log(server) if x["event"] == "dashboard"]
        assert line["url"] == want
        assert "configured-token-123" not in log
    else:
        assert f"url={want}" in log or f"url='{want}'" in log, log


def _hold_the_shutdown(server: Server, holder: str, stack: ExitStack) -> str:
    """Make ``server``'s graceful shutdown wait; return the log line that says it waits."""
    body = sample("completed-midjourney")
    if holder == "running-handler":
        assert server.post_webhook(body).status_code == 202
        return "worker stopping"
    head = f"POST /webhooks/apiframe HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    for name, value in signed_headers(body).items():
        if name.lower() != "content-length":
            head += f"{name}: {value}\r\n"
    slow = stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
    slow.sendall(head.encode() + b"\r\n" + body[:10])  # the rest never comes
    return "Waiting for connections to close"


@pytest.mark.slow
@pytest.mark.parametrize("holder", ["slow-request", "running-handler"])
def test_a_second_ctrl_c_during_the_graceful_shutdown_exits_at_once_without_traceback(
    tmp_path: Path, holder: str
) -> None:
    """A webhook whose body is still arriving, or a handler still running, holds the graceful
    shutdown; a second SIGINT ends the process at once with 130 and one line, no traceback."""
    runs = tmp_path / "runs"
    env = framehook_env(
        FRAMEHOOK_HANDLERS="tests.support.plugins:FileLogged",
        FRAMEHOOK_TEST_RUNS=str(runs),
        FRAMEHOOK_TEST_SLEEP="60",
    )
    server = Server(env, tmp_path)
    try:
        server.wait_ready()
        with ExitStack() as stack:
            waiting = _hold_the_shutdown(server, holder, stack)
            time.sleep(0.5)
            server.process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 10
            while waiting not in server.log.read_text():
                assert time.monotonic() < deadline, server.log.read_text()
                assert server.process.poll() is None, server.log.read_text()
                time.sleep(0.05)
            server.process.send_signal(signal.SIGINT)
            # It must end by itself: a SIGTERM sent while it unwinds (as ``stop`` sends one)
            # would reach uvicorn's restored default handler and end it with -15 instead.
            server.process.wait(10)
            assert server.stop() == 130
    finally:
        if server.process.poll() is None:
            server.kill()
    log = server.log.read_text()
    assert "Traceback" not in log
    assert log.splitlines()[-1] == (
        "framehook: second Ctrl-C, stopping now: unacknowledged webhooks come again, "
        "interrupted handler runs are retried"
    )


@pytest.mark.slow
def test_demo_keep_running_prints_a_dashboard_link_that_signs_in(tmp_path: Path) -> None:
    """`framehook demo --keep-running` prints the dashboard's full address with its token,
    and that token opens the receiver's /api."""
    output = tmp_path / "demo.out"
    args = ["demo", "--dir", "d", "--keep-running", "--step-seconds", "0.02"]
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "receiver", *args],
            env=framehook_env(),
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while "Still running" not in output.read_text():
                assert time.monotonic() < deadline, output.read_text()
                assert process.poll() is None, output.read_text()
                time.sleep(0.1)
            time.sleep(0.2)  # the rest of the message
            found = re.search(
                r"The dashboard: (http://127\.0\.0\.1:\d+)/#token=(\S+)", output.read_text()
            )
            assert found, output.read_text()
            base, token = found.groups()
            answer = httpx.get(f"{base}/api/jobs", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200
            assert len(answer.json()["items"]) == 6
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(30)
    assert "Traceback" not in output.read_text()
