"""The ``framehook`` command as a user runs it: real processes, real sockets."""

from __future__ import annotations

import importlib.metadata
import json
import signal
import sqlite3
from pathlib import Path

import pytest

import receiver
from tests.support.processes import Server, framehook_env, run_cli
from tests.support.webhooks import sample, signed_headers


def test_version_is_the_installed_distributions(tmp_path: Path) -> None:
    """``framehook --version`` prints the version pip installed, which ``receiver.__version__``
    also reads, and needs no configuration."""
    env = framehook_env()
    del env["APIFRAME_API_KEY"]
    result = run_cli(["--version"], env, tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"framehook {importlib.metadata.version('framehook')}\n"
    assert receiver.__version__ == importlib.metadata.version("framehook")


def test_serve_without_an_api_key_fails_clearly(tmp_path: Path) -> None:
    """No APIFRAME_API_KEY: exit 2 with a message naming the variable, no traceback."""
    env = framehook_env()
    del env["APIFRAME_API_KEY"]
    result = run_cli(["serve"], env, tmp_path)
    assert result.returncode == 2
    assert "APIFRAME_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_blank_api_key_counts_as_none(tmp_path: Path) -> None:
    """APIFRAME_API_KEY set to spaces is no key at all."""
    result = run_cli(["serve"], framehook_env(APIFRAME_API_KEY="   "), tmp_path)
    assert result.returncode == 2
    assert "no Apiframe API key" in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FRAMEHOOK_PORT": "eighty"}, "FRAMEHOOK_PORT"),
        ({"FRAMEHOOK_MAX_BODY_BYTES": "-1"}, "FRAMEHOOK_MAX_BODY_BYTES"),
        ({"FRAMEHOOK_DATABASE_URL": "mysql://x/y"}, "unsupported database"),
        ({"FRAMEHOOK_DATABASE_URL": "::nonsense::"}, "not a database URL"),
        ({"FRAMEHOOK_HANDLERS": "no-such-handler"}, 'handler "no-such-handler" not found'),
        ({"FRAMEHOOK_HANDLERS": "tests.nowhere:Handler"}, 'module "tests.nowhere" not found'),
        ({"FRAMEHOOK_HANDLERS": "download,download"}, 'two handlers are named "download"'),
        ({"FRAMEHOOK_STORAGE_URL": "nosuch://bucket"}, "no storage backend for nosuch://"),
    ],
)
def test_bad_configuration_fails_start_up_with_its_name(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    """Each unusable setting stops start-up with exit 2 and a message that names it."""
    result = run_cli(["serve"], framehook_env(**env), tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade_creates_the_schema_and_is_idempotent(tmp_path: Path) -> None:
    """`framehook db upgrade` creates every table; a second run changes nothing."""
    url = f"sqlite:///{tmp_path / 'fh.db'}"
    first = run_cli(["db", "upgrade", "--database-url", url], framehook_env(), tmp_path)
    assert first.returncode == 0, first.stderr
    assert "(was empty)" in first.stderr
    second = run_cli(["db", "upgrade", "--database-url", url], framehook_env(), tmp_path)
    assert second.returncode == 0
    assert "(was empty)" not in second.stderr
    tables = {
        r[0] for r in sqlite3.connect(tmp_path / "fh.db").execute("SELECT name FROM sqlite_master")
    }
    assert {"jobs", "deliveries", "ledger", "tasks", "alembic_version"} <= tables


def test_db_upgrade_reports_an_unreachable_database(tmp_path: Path) -> None:
    """An unreachable database is a one-line error, not a traceback."""
    url = "postgresql://nobody@127.0.0.1:1/none"
    result = run_cli(["db", "upgrade", "--database-url", url], framehook_env(), tmp_path)
    assert result.returncode == 2
    assert "cannot connect to PostgreSQL at 127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_receives_a_webhook_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """A real `framehook serve`: default SQLite in ./framehook-data, 202, graceful SIGTERM."""
    server = Server(framehook_env(), tmp_path)
    try:
        server.wait_ready()
        body = sample("completed-midjourney")
        assert server.post_webhook(body).status_code == 202
    finally:
        code = server.stop()
    # uvicorn re-raises SIGTERM after its graceful shutdown, as a process manager expects.
    assert code in (0, -signal.SIGTERM)
    db = sqlite3.connect(tmp_path / "framehook-data" / "framehook.db")
    assert db.execute("SELECT outcome FROM deliveries").fetchall() == [("accepted",)]
    log = server.log.read_text()
    assert "Application shutdown complete" in log
    (line,) = [json.loads(x) for x in log.splitlines() if '"event":"delivery"' in x]
    assert line["job_id"] == "6f1c2a9e-3b7d-4e21-9a55-0c8d2f4b7a10"
    assert (line["outcome"], line["status"], line["webhook_event"]) == (
        "accepted",
        202,
        "completed",
    )
    assert line["request_id"]
    assert (line["level"], line["logger"]) == ("info", "framehook.webhook")
    assert "afk_" not in log  # the API key never reaches a log line
    assert "sha256=" not in log


@pytest.mark.parametrize(
    ("args", "expected"), [((), "127.0.0.1"), (("--proxy-headers",), "203.0.113.9")]
)
def test_proxy_headers_only_when_asked(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    """X-Forwarded-For from a trusted proxy is the client address only with --proxy-headers."""
    server = Server(framehook_env(), tmp_path, args)
    try:
        server.wait_ready()
        body = sample("progress-midjourney-45")
        headers = {**signed_headers(body), "X-Forwarded-For": "203.0.113.9"}
        assert server.post_webhook(body, headers).status_code == 202
    finally:
        server.stop()
    db = sqlite3.connect(tmp_path / "framehook-data" / "framehook.db")
    assert db.execute("SELECT remote_addr FROM deliveries").fetchall() == [(expected,)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of --task ID, --job ID or --dead"),
        (["--task", "1", "--dead"], "exactly one of"),
        (["--task", "1", "--handler", "download"], "--handler goes with --job or --dead"),
    ],
)
def test_replay_needs_exactly_one_target(tmp_path: Path, args: list[str], message: str) -> None:
    """`framehook replay` says what it needs instead of guessing."""
    result = run_cli(["replay", *args], framehook_env(), tmp_path)
    assert result.returncode == 2
    assert message in result.stderr


def test_replay_dead_and_unknown_task(tmp_path: Path) -> None:
    """--dead on an empty queue re-queues 0; an unknown --task is exit 1 with a reason."""
    url = f"sqlite:///{tmp_path / 'fh.db'}"
    assert (
        run_cli(["db", "upgrade", "--database-url", url], framehook_env(), tmp_path).returncode == 0
    )
    dead = run_cli(["replay", "--dead", "--database-url", url], framehook_env(), tmp_path)
    assert (dead.returncode, "re-queued 0 tasks" in dead.stderr) == (0, True)
    missing = run_cli(["replay", "--task", "42", "--database-url", url], framehook_env(), tmp_path)
    assert missing.returncode == 1
    assert "task 42 not re-queued" in missing.stderr


def test_worker_command_refuses_an_unloadable_handler(tmp_path: Path) -> None:
    """`framehook worker` fails start-up, with the handler's name, when it cannot load it."""
    env = framehook_env(
        FRAMEHOOK_HANDLERS="nope", FRAMEHOOK_DATABASE_URL=f"sqlite:///{tmp_path}/x.db"
    )
    result = run_cli(["worker"], env, tmp_path)
    assert result.returncode == 2
    assert 'handler "nope" not found' in result.stderr
