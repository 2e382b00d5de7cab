"""`framehook send-test EVENT` against a real `framehook serve` on loopback."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from receiver.cli import app
from receiver.dev.fakeapi import MODALITIES
from tests.support.processes import Server, framehook_env, free_port, run_cli
from tests.support.webhooks import API_KEY, OTHER_KEY


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One receiver-only `framehook serve` for the module (SQLite in its own directory)."""
    cwd = tmp_path_factory.mktemp("send-test")
    server = Server(framehook_env(), cwd, ["--no-worker"])
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def send(*args: str, **env: str | None) -> Result:
    """Run `framehook send-test ARGS` in-process, signing with the test key unless told."""
    environment: dict[str, str | None] = {
        "APIFRAME_API_KEY": API_KEY,
        "FRAMEHOOK_API_KEYS": None,
        "FRAMEHOOK_HOST": None,
        "FRAMEHOOK_PORT": None,
    }
    environment.update(env)
    return CliRunner().invoke(app, ["send-test", *args], env=environment)


def answers(result: Result) -> list[tuple[int, dict[str, object]]]:
    """(status, JSON answer) of each request, from the command's standard output."""
    found, lines = [], result.stdout.splitlines()
    for index, line in enumerate(lines):
        head = line.split(" ", 1)[0]
        if head.isdigit() and len(head) == 3:
            end = index + 1
            while end < len(lines) and not lines[end].split(" ", 1)[0].isdigit():
                end += 1
            found.append((int(head), json.loads("\n".join(lines[index + 1 : end]))))
    return found


def job_row(server: Server, job_id: str) -> tuple[str, str | None] | None:
    """(status, model) of the job as the receiver stored it."""
    database = server.log.parent / "framehook-data" / "framehook.db"
    with sqlite3.connect(database) as connection:
        row = connection.execute(
            "SELECT status, model FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
    return None if row is None else (row[0], row[1])


def test_the_same_completed_body_twice_is_202_then_200(server: Server) -> None:
    """--repeat 2 sends the same signed bytes twice: 202 accepted, then 200 duplicate; exit 0."""
    url = f"{server.url}/webhooks/apiframe"
    result = send("completed", "--url", url, "--repeat", "2")
    assert result.exit_code == 0, result.output
    (first, accepted), (second, duplicate) = answers(result)
    assert (first, accepted["outcome"]) == (202, "accepted")
    assert (second, duplicate["outcome"]) == (200, "duplicate")
    assert job_row(server, str(accepted["jobId"])) == ("COMPLETED", "midjourney")


def test_one_job_id_sent_again_is_a_duplicate(server: Server) -> None:
    """Two runs with one --job-id and --progress send the same body: 202, then 200."""
    url, job_id = f"{server.url}/webhooks/apiframe", str(uuid.uuid4())
    args = ("progress", "--url", url, "--job-id", job_id, "--progress", "30")
    assert answers(send(*args))[0][0] == 202
    again = send(*args)
    assert again.exit_code == 0
    assert answers(again)[0][0] == 200
    assert job_row(server, job_id) == ("PROCESSING", "midjourney")


@pytest.mark.parametrize("modality", sorted(MODALITIES))
def test_every_modality_is_accepted_and_stored(server: Server, modality: str) -> None:
    """A completed event of each modality is accepted (202) and completes the job."""
    job_id = str(uuid.uuid4())
    url = f"{server.url}/webhooks/apiframe"
    result = send("completed", "--url", url, "--modality", modality, "--job-id", job_id)
    assert result.exit_code == 0, result.output
    assert answers(result)[0][0] == 202
    assert job_row(server, job_id) == ("COMPLETED", MODALITIES[modality][1])


def test_a_failed_event_with_a_chosen_model_fails_the_job(server: Server) -> None:
    """`failed --model flux-pro` is stored as a FAILED flux-pro job."""
    job_id = str(uuid.uuid4())
    url = f"{server.url}/webhooks/apiframe"
    result = send("failed", "--url", url, "--model", "flux-pro", "--job-id", job_id)
    assert result.exit_code == 0, result.output
    assert job_row(server, job_id) == ("FAILED", "flux-pro")


def test_the_default_url_follows_framehook_host_and_port(server: Server) -> None:
    """Without --url: http://FRAMEHOOK_HOST:FRAMEHOOK_PORT/webhooks/apiframe (0.0.0.0 is
    reached on loopback)."""
    any_interface = "0.0.0.0"  # noqa: S104 - where a container's server listens
    result = send("progress", FRAMEHOOK_HOST=any_interface, FRAMEHOOK_PORT=str(server.port))
    assert result.exit_code == 0, result.output
    assert answers(result)[0][0] == 202
    assert f"127.0.0.1:{server.port}/webhooks/apiframe" in result.stderr


def test_a_key_the_receiver_does_not_know_gets_401_and_exit_1(server: Server) -> None:
    """Signed with another key: the 401 and its reason are printed, and the exit code is 1."""
    url = f"{server.url}/webhooks/apiframe"
    result = send("completed", "--url", url, "--api-key", OTHER_KEY)
    assert result.exit_code == 1
    [(status, answer)] = answers(result)
    assert (status, answer["reason"]) == (401, "signature_mismatch")


def test_a_refused_connection_is_a_clear_error_and_exit_1(tmp_path: Path) -> None:
    """Nothing listening: one clear line, exit 1, no traceback (a real process)."""
    url = f"http://127.0.0.1:{free_port()}/webhooks/apiframe"
    result = run_cli(["send-test", "completed", "--url", url], framehook_env(), tmp_path)
    assert result.returncode == 1
    assert "could not connect" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["done"], {}, "unknown event 'done'"),
        (["completed", "--modality", "hologram"], {}, "unknown modality 'hologram'"),
        (["completed", "--job-id", "42"], {}, "is not a UUID"),
        (["completed", "--progress", "5"], {}, "--progress goes with the progress event"),
        (["completed", "--url", "ftp://example.com/hook"], {}, "not an http(s) URL"),
        (["completed"], {"APIFRAME_API_KEY": None}, "no API key"),
    ],
)
def test_usage_and_configuration_errors_exit_2_with_a_message(
    args: list[str], env: dict[str, str | None], message: str
) -> None:
    """Each mistake exits 2 with a message naming it, no traceback, nothing sent."""
    result = send(*args, **env)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout == ""
