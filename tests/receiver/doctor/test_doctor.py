"""`framehook doctor`: each check on a real database, real storage and real loopback servers,
and the command as a user runs it (a real process: exit code, output, no traceback)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import make_url, text

import receiver.db.migrations
from receiver import Settings
from receiver.db.engine import create_db_engine
from receiver.db.schema import HEAD, upgrade
from receiver.dev.fakeapi import Behaviour
from receiver.doctor import (
    PROBE_PREFIX,
    Check,
    Status,
    check_admin_token,
    check_api_keys,
    check_apiframe,
    check_configuration,
    check_database,
    check_handlers,
    check_public_url,
    check_storage,
)
from tests.receiver.reconcile.test_reconcile import fake_server
from tests.support.processes import Server, framehook_env, free_port, run_cli
from tests.support.webhooks import API_KEY, OTHER_KEY

ADMIN_TOKEN = "doctor-test-admin-token-0123456789"
ALL_CHECKS = (
    "configuration",
    "api keys",
    "database",
    "schema",
    "storage",
    "handler download",
    "public url",
    "admin token",
)


def migrated_sqlite(path: Path, revision: str = "head") -> str:
    """A SQLite database at ``path`` migrated to ``revision``; its URL."""
    url = f"sqlite:///{path}"
    engine = create_db_engine(url)
    upgrade(engine, revision)
    engine.dispose()
    return url


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    """A healthy configuration in ``tmp_path`` (migrated SQLite, local storage), overridden."""
    database = tmp_path / "framehook.db"
    values: dict[str, Any] = {
        "api_key": API_KEY,
        "database_url": overrides.pop("database_url", None) or migrated_sqlite(database),
        "storage_url": str(tmp_path / "assets"),
        "handlers": ["download"],
        "admin_token": ADMIN_TOKEN,
    }
    return Settings(**{**values, **overrides})


def only(checks: list[Check], name: str) -> Check:
    """The one check called ``name``."""
    (found,) = [c for c in checks if c.name == name]
    return found


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running `framehook serve` and the environment of a healthy deployment around it."""
    cwd = tmp_path_factory.mktemp("doctor")
    env = framehook_env(
        FRAMEHOOK_DATABASE_URL=migrated_sqlite(cwd / "framehook.db"),
        FRAMEHOOK_STORAGE_URL=str(cwd / "assets"),
        FRAMEHOOK_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    server = Server(env, cwd, ["--no-worker"])
    try:
        server.wait_ready()
        yield {**env, "FRAMEHOOK_PUBLIC_URL": server.url, "cwd": str(cwd)}
    finally:
        server.stop()


def doctor(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run `framehook doctor ARGS` as a real process; (exit code, stdout, stderr)."""
    environment = {k: v for k, v in env.items() if k != "cwd"}
    result = run_cli(["doctor", *args], environment, Path(env["cwd"]))
    assert "Traceback" not in result.stdout + result.stderr
    return result.returncode, result.stdout, result.stderr


def marks(stdout: str) -> dict[str, str]:
    """Each check's name and mark (ok, warn, FAIL) from the printed report."""
    found = {}
    for line in stdout.splitlines():
        mark, _, rest = line.partition("  ")
        if mark.strip() in ("ok", "warn", "FAIL"):
            found[rest.strip().split("  ")[0]] = mark.strip()
    return found


def test_a_healthy_deployment_is_all_ok_and_exits_0(deployment: dict[str, str]) -> None:
    """Every check ok on a running receiver, one line each, a summary, exit 0 (its public URL
    is loopback here, which Apiframe cannot reach: that one warns)."""
    code, stdout, _ = doctor(deployment)
    assert code == 0, stdout
    assert marks(stdout) == {**dict.fromkeys(ALL_CHECKS, "ok"), "public url": "warn"}
    assert stdout.rstrip().endswith("7 ok, 1 warn, 0 FAIL")
    assert API_KEY not in stdout
    assert ADMIN_TOKEN not in stdout
    assert not (Path(deployment["cwd"]) / "assets" / PROBE_PREFIX).exists()


def test_json_output_is_one_parseable_document(deployment: dict[str, str]) -> None:
    """--json prints only JSON: overall ok, counts, and every check with status and hint."""
    code, stdout, _ = doctor(deployment, "--json")
    report = json.loads(stdout)
    assert code == 0
    assert report["ok"] is True
    assert report["counts"] == {"ok": 7, "warn": 1, "fail": 0}
    assert [c["name"] for c in report["checks"]] == list(ALL_CHECKS)
    # Every check ok, without a hint, but the public URL: loopback, which Apiframe cannot reach.
    hinted = {(c["name"], c["status"]) for c in report["checks"] if c["hint"]}
    assert hinted == {("public url", "warn")}
    assert {c["status"] for c in report["checks"] if not c["hint"]} == {"ok"}
    assert f"revision {HEAD}" in only([Check(**c) for c in report["checks"]], "schema").detail


def test_a_missing_api_key_fails_and_the_other_checks_still_run(
    deployment: dict[str, str],
) -> None:
    """No APIFRAME_API_KEY: the keys check FAILs with a hint, the rest still report, exit 1."""
    env = {k: v for k, v in deployment.items() if k != "APIFRAME_API_KEY"}
    code, stdout, _ = doctor(env, "--json")
    report = json.loads(stdout)
    assert (code, report["ok"]) == (1, False)
    keys = only([Check(**c) for c in report["checks"]], "api keys")
    assert keys.status == "fail"
    assert keys.hint is not None
    assert "APIFRAME_API_KEY" in keys.hint
    assert only([Check(**c) for c in report["checks"]], "database").status == "ok"


def test_an_unreachable_database_is_a_fail_line_not_a_traceback(
    deployment: dict[str, str],
) -> None:
    """A database that refuses connections: FAIL with the driver's reason and a hint, exit 1."""
    env = {**deployment, "FRAMEHOOK_DATABASE_URL": "postgresql://nobody:s3cret@127.0.0.1:1/none"}
    code, stdout, _ = doctor(env)
    assert code == 1
    assert marks(stdout)["database"] == "FAIL"
    assert "schema" not in marks(stdout)  # nothing to read it from
    assert marks(stdout)["storage"] == "ok"
    assert "Connection refused" in stdout
    assert "hint:" in stdout
    assert "s3cret" not in stdout
    assert stdout.rstrip().endswith("FAIL: framehook is not ready")


def test_an_invalid_setting_is_named_and_the_other_checks_still_run(
    deployment: dict[str, str],
) -> None:
    """FRAMEHOOK_PORT=eighty: the configuration FAILs naming the variable; the rest still run."""
    code, stdout, _ = doctor({**deployment, "FRAMEHOOK_PORT": "eighty"})
    assert code == 1
    assert marks(stdout)["configuration"] == "FAIL"
    assert "FRAMEHOOK_PORT" in stdout
    assert marks(stdout)["database"] == "ok"


def test_an_invalid_setting_falls_back_to_its_default_for_the_other_checks(
    tmp_path: Path,
) -> None:
    """The configuration check returns usable settings with the broken field at its default."""
    check, loaded = check_configuration({"port": "eighty", "log_format": "xml"})
    assert check.status is Status.FAIL
    assert "FRAMEHOOK_PORT" in check.detail
    assert "FRAMEHOOK_LOG_FORMAT" in check.detail
    assert loaded is not None
    assert (loaded.port, loaded.log_format) == (8000, None)


def test_keys_are_counted_and_shown_only_by_their_last_four_characters() -> None:
    """Two keys: counted, each shown as …XXXX, never whole."""
    (check,) = check_api_keys(Settings(api_key=API_KEY, api_keys=[OTHER_KEY]))
    assert check.status is Status.OK
    assert check.detail == f"2 signing keys: …{API_KEY[-4:]}, …{OTHER_KEY[-4:]}"


def test_a_schema_behind_head_warns_on_sqlite_and_fails_without_auto_migrate(
    tmp_path: Path,
) -> None:
    """One revision behind: warn where serve migrates at start, FAIL where it will not."""
    scripts = ScriptDirectory(str(Path(receiver.db.migrations.__file__).parent))
    previous = scripts.get_revision(HEAD).down_revision
    assert isinstance(previous, str)
    url = migrated_sqlite(tmp_path / "old.db", previous)
    database, schema = check_database(settings(tmp_path, database_url=url))
    assert database.status is Status.OK
    assert (schema.status, f"at revision {previous}, behind {HEAD}" in schema.detail) == (
        Status.WARN,
        True,
    )
    _, schema = check_database(settings(tmp_path, database_url=url, auto_migrate=False))
    assert schema.status is Status.FAIL
    assert schema.hint is not None
    assert "framehook db upgrade" in schema.hint


def test_a_schema_from_a_newer_version_fails(tmp_path: Path) -> None:
    """A revision this version does not ship (a newer framehook migrated it): FAIL."""
    url = migrated_sqlite(tmp_path / "new.db")
    engine = create_db_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    engine.dispose()
    _, schema = check_database(settings(tmp_path, database_url=url))
    assert schema.status is Status.FAIL
    assert "unknown to this framehook" in schema.detail


def test_a_missing_sqlite_file_warns_and_is_not_created(tmp_path: Path) -> None:
    """No database file yet: warn (serve creates it), and the doctor does not create one."""
    url = f"sqlite:///{tmp_path / 'nothing-yet.db'}"
    (check,) = check_database(settings(tmp_path, database_url=url))
    assert check.status is Status.WARN
    assert not (tmp_path / "nothing-yet.db").exists()


@pytest.mark.postgres
def test_postgresql_answers_with_its_schema_current(postgres_database: str, tmp_path: Path) -> None:
    """On PostgreSQL: the dialect is named and the migrated schema is current."""
    database, schema = check_database(settings(tmp_path, database_url=postgres_database))
    assert (database.status, schema.status) == (Status.OK, Status.OK)
    url = make_url(postgres_database)
    assert database.detail.startswith(f"postgresql {url.username}@{url.host}:")


def test_storage_under_a_regular_file_fails(tmp_path: Path) -> None:
    """A storage path below a regular file cannot be created: FAIL with the OS's reason."""
    (tmp_path / "a-file").write_text("not a directory")
    (check,) = check_storage(settings(tmp_path, storage_url=str(tmp_path / "a-file" / "assets")))
    assert check.status is Status.FAIL
    assert "NotADirectoryError" in check.detail
    assert check.hint is not None


def test_writable_storage_passes_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """The probe is written, read back and deleted, its directory too."""
    (check,) = check_storage(settings(tmp_path))
    assert check.status is Status.OK
    assert list((tmp_path / "assets").iterdir()) == []


def test_memory_storage_warns_that_files_vanish(tmp_path: Path) -> None:
    """memory:// works but keeps nothing: warn."""
    (check,) = check_storage(settings(tmp_path, storage_url="memory://"))
    assert check.status is Status.WARN


def test_an_unknown_storage_scheme_fails(tmp_path: Path) -> None:
    """A scheme without a backend: FAIL naming it."""
    (check,) = check_storage(settings(tmp_path, storage_url="nosuch://bucket"))
    assert check.status is Status.FAIL
    assert "nosuch://" in check.detail


def test_each_handler_is_checked_and_one_that_does_not_import_fails(tmp_path: Path) -> None:
    """The download handler loads with its subscriptions; a broken module FAILs with its error."""
    broken = "tests.receiver.queue.broken_plugin:Handler"
    checks = check_handlers(settings(tmp_path, handlers=["download", broken]))
    assert [(c.name, c.status) for c in checks] == [
        ("handler download", Status.OK),
        (f"handler {broken}", Status.FAIL),
    ]
    assert "events completed" in checks[0].detail
    assert "a_dependency_that_is_not_installed" in checks[1].detail


def test_handlers_that_clash_or_are_missing_are_reported(tmp_path: Path) -> None:
    """Two handlers with one name FAIL together; no handler at all warns."""
    clash = check_handlers(settings(tmp_path, handlers=["download", "download"]))
    assert only(clash, "handlers").status is Status.FAIL
    (none,) = check_handlers(settings(tmp_path, handlers=[]))
    assert none.status is Status.WARN


def test_a_public_url_reaching_the_receiver_passes(
    deployment: dict[str, str], tmp_path: Path
) -> None:
    """A real `framehook serve` on loopback answers /healthz, with the status (a warning
    only because loopback is no address for Apiframe)."""
    url = deployment["FRAMEHOOK_PUBLIC_URL"]
    (check,) = check_public_url(settings(tmp_path, public_url=url + "/"))
    assert check.status is Status.WARN
    assert f"GET {url}/healthz: 200 OK" in check.detail


def test_a_public_url_refusing_connections_fails(tmp_path: Path) -> None:
    """Nothing listens there: FAIL with the connection error and a hint."""
    url = f"http://127.0.0.1:{free_port()}"
    (check,) = check_public_url(settings(tmp_path, public_url=url), timeout=2)
    assert check.status is Status.FAIL
    assert "ConnectError" in check.detail


class _NotFramehook(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>hello</html>" if self.path == "/healthz" else b""
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_public_url_reaching_another_service_warns(tmp_path: Path) -> None:
    """200 from something that is not framehook (a wrong tunnel target): warn."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFramehook)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        (check,) = check_public_url(settings(tmp_path, public_url=url))
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
    assert check.status is Status.WARN
    assert "not framehook's answer" in check.detail


def test_an_unset_public_url_warns(tmp_path: Path) -> None:
    """No FRAMEHOOK_PUBLIC_URL: warn, naming the variable."""
    (check,) = check_public_url(settings(tmp_path))
    assert check.status is Status.WARN
    assert "FRAMEHOOK_PUBLIC_URL" in check.detail


@pytest.mark.parametrize(
    ("token", "status"), [(None, Status.WARN), ("short", Status.WARN), (ADMIN_TOKEN, Status.OK)]
)
def test_the_admin_token_should_be_set_and_long(
    tmp_path: Path, token: str | None, status: Status
) -> None:
    """Unset (a new one at each start) or short: warn; a long one: ok, never printed."""
    (check,) = check_admin_token(settings(tmp_path, admin_token=token))
    assert check.status is status
    assert token is None or token not in check.detail


@pytest.fixture(scope="module")
def fake_api() -> Iterator[str]:
    """The fake Apiframe, served by uvicorn in a thread; yields its URL."""
    with fake_server(Behaviour()) as url:
        yield url


@pytest.mark.parametrize(("key", "status"), [(API_KEY, Status.OK), (OTHER_KEY, Status.FAIL)])
def test_the_apiframe_check_asks_the_job_api_with_the_key(
    fake_api: str, tmp_path: Path, key: str, status: Status
) -> None:
    """--apiframe: the job API accepts the key (ok) or refuses it (FAIL, 401, key not shown)."""
    (check,) = check_apiframe(settings(tmp_path, api_key=key, apiframe_url=fake_api))
    assert check.status is status
    assert key not in check.detail
    if status is Status.FAIL:
        assert "401" in check.detail
