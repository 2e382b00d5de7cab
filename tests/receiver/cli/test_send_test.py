"""`framehook send-test EVENT` against a real `framehook serve` on loopback."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner, Result

from handlers.download import NOTHING_TO_CAPTURE
from receiver.cli import app
from receiver.dev.fakeapi import MODALITIES
from tests.support.cdn import FakeCdn, Route
from tests.support.media import media_bytes
from tests.support.processes import Server, framehook_env, free_port, run_cli
from tests.support.waiting import wait_until
from tests.support.webhooks import API_KEY, OTHER_KEY, webhook_body


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


def answers(result: Result | CompletedProcess[str]) -> list[tuple[int, dict[str, Any]]]:
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


TOKEN = "send-test-admin-token"


@pytest.mark.slow
def test_a_test_event_ends_cleanly_counts_no_credits_and_leaves_real_jobs_alone(
    tmp_path: Path,
) -> None:
    """A real `framehook serve` (worker on, SQLite) gets `framehook send-test completed` from a
    real process: the job is a test job, its download task succeeds once with "test event:
    nothing to capture", /api/credits leaves it out. A real signed body for another job is
    captured and charged as ever, and a test event sent with its id changes nothing."""
    with FakeCdn() as cdn:
        env = framehook_env(
            FRAMEHOOK_ADMIN_TOKEN=TOKEN,
            FRAMEHOOK_STORAGE_URL=str(tmp_path / "assets"),
            FRAMEHOOK_ASSET_HOSTS="localhost",
            FRAMEHOOK_ASSET_ALLOW_HTTP="true",
            FRAMEHOOK_ASSET_ALLOW_NETWORKS="127.0.0.0/8,::1/128",
            FRAMEHOOK_POLL_SECONDS="0.2",
        )
        server = Server(env, tmp_path)
        try:
            server.wait_ready()
            _check_test_and_real_jobs(server, cdn, env, tmp_path)
        finally:
            server.stop()
    assert cdn.hits == {"/real.png": 1}  # the test job's made-up URLs were never fetched


def _api(server: Server, path: str) -> dict[str, Any]:
    """GET an admin route with the token; the JSON answer."""
    response = httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _settled(server: Server, job_id: str) -> dict[str, Any]:
    """The job's timeline once its one task has finished."""
    found: dict[str, Any] = {}

    def finished() -> bool:
        found.update(_api(server, f"/api/jobs/{job_id}"))
        tasks = found.get("tasks")
        return isinstance(tasks, list) and [t["status"] for t in tasks] in (
            ["succeeded"],
            ["dead"],
        )

    wait_until(finished, timeout=30)
    return found


def _check_test_and_real_jobs(server: Server, cdn: FakeCdn, env: dict[str, str], cwd: Path) -> None:
    url = f"{server.url}/webhooks/apiframe"
    sent = run_cli(["send-test", "completed", "--url", url], env, cwd)
    assert sent.returncode == 0, sent.stderr
    [(status, answer)] = answers(sent)
    assert (status, answer["outcome"]) == (202, "accepted")
    test_id = str(answer["jobId"])
    note = " ".join(sent.stderr.split())
    assert "test event" in note
    assert "counts no credits" in note
    assert NOTHING_TO_CAPTURE in note
    assert f"framehook jobs show {test_id}" in note

    job = _settled(server, test_id)
    [task] = job["tasks"]
    assert (task["handler"], task["status"], task["attempts"]) == ("download", "succeeded", 1)
    assert task["lastError"] is None
    assert (job["status"], job["test"], job["files"]) == (
        "COMPLETED",
        True,
        {"expected": 0, "stored": 0},
    )
    lines = [orjson.loads(line) for line in server.log.read_text().splitlines() if line[:1] == "{"]
    assert any(
        line.get("event") == NOTHING_TO_CAPTURE and line.get("job_id") == test_id for line in lines
    )
    # `jobs show` says it is a test, wherever one looks.
    shown = run_cli(["jobs", "show", test_id], env, cwd)
    assert shown.returncode == 0, shown.stderr
    assert "COMPLETED test" in shown.stdout
    assert "— (test event: nothing to capture)" in shown.stdout

    # A real body for another job: captured and charged, as before test events existed.
    real_id = str(uuid.uuid4())
    image = media_bytes("png", 20_000)
    cdn.route("/real.png", Route(image, content_type="image/png"))
    result = {"images": [f"http://localhost:{cdn.port}/real.png"]}
    body = orjson.dumps(
        webhook_body("completed", jobId=real_id, model="flux-pro", result=result, creditCost=7)
    )
    assert server.post_webhook(body).status_code == 202
    real = _settled(server, real_id)
    assert (real["test"], real["files"]) == (False, {"expected": 1, "stored": 1})

    # A test event sent with the real job's id changes nothing (stale), and says so.
    again = run_cli(["send-test", "failed", "--url", url, "--job-id", real_id], env, cwd)
    assert again.returncode == 0, again.stderr
    assert answers(again)[0][1]["outcome"] == "stale"
    assert "changed nothing" in again.stderr
    assert _api(server, f"/api/jobs/{real_id}")["status"] == "COMPLETED"

    credits = _api(server, "/api/credits")
    assert credits["total"] == {"completed": 1, "failed": 0, "credits": 7}
    assert [row["key"] for row in credits["items"]] == ["flux-pro"]
