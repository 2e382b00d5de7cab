"""`framehook jobs`, `jobs show` and `credits` as real processes: each distinct error once,
the admin API's JSON with --json, whole values in a pipe."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tests.receiver.admin.scenario import (
    AUTH,
    UNRESOLVABLE,
    build_timeline,
    dead_download,
    post,
    progress,
)
from tests.support.processes import framehook_env, run_cli

# Each runs the CLI as a process a few times (a second or more each on a loaded machine).
pytestmark = pytest.mark.slow

# An 80-column terminal, a dumb one: no colour codes in what the test reads (Rich takes
# its size from COLUMNS and LINES only when both are set).
TERMINAL = {"TTY_COMPATIBLE": "1", "TERM": "dumb", "COLUMNS": "80", "LINES": "25"}


def framehook(
    tmp_path: Path, database_url: str, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `framehook ARGS --database-url URL` as a process, its output in a pipe (unless
    ``env`` says it is a terminal); it must succeed."""
    result = run_cli([*args, "--database-url", database_url], framehook_env(**env), tmp_path)
    assert result.returncode == 0, result.stderr
    return result


def test_jobs_show_prints_each_distinct_error_once(
    make_client: Callable[..., TestClient], database_url: str, tmp_path: Path
) -> None:
    """Five files failing DNS on six attempts: one error line (6 attempts, files 1-5), each
    attempt labelled E1, the whole at 80 columns in under 40 lines (it took 491); --full
    prints every attempt's error whole again."""
    dead_download(make_client, "job-dns", files=5, attempts=6)
    dns = f"cannot resolve {UNRESOLVABLE}"
    for env in ({}, TERMINAL):
        out = framehook(tmp_path, database_url, "jobs", "show", "job-dns", **env).stdout
        (line,) = [line for line in out.splitlines() if "ConnectError" in line]
        assert [cell.strip() for cell in line.split("│")[1:4]] == ["E1", "6", "1-5"]
        assert dns[:30] in line
        assert out.count("E1") == 1 + 1 + 6  # the error, the task, its six attempts
        assert len(out.splitlines()) < 40
    full = framehook(tmp_path, database_url, "jobs", "show", "job-dns", "--full").stdout
    # Six attempts and the task's last error, five files each; and the group.
    assert full.count(dns) == 6 * 5 + 5 + 1


def _without_links(job: dict[str, Any]) -> dict[str, Any]:
    return {
        **job,
        "assets": [{k: v for k, v in a.items() if k != "contentUrl"} for a in job["assets"]],
    }


def test_json_is_the_admin_apis(
    make_client: Callable[..., TestClient], database_url: str, tmp_path: Path
) -> None:
    """--json prints one document shaped as the API answers: `jobs` its page (and its
    nextCursor continues in both), `jobs show` the job (assets without their signed link),
    `credits` the ledger."""
    timeline = build_timeline(make_client)
    client = timeline.client
    post(client, progress("job-later", 10))

    def api(path: str, **params: Any) -> Any:
        answer = client.get(path, params=params, headers=AUTH)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def cli(*args: str) -> Any:
        return orjson.loads(framehook(tmp_path, database_url, *args, "--json").stdout)

    assert cli("jobs") == api("/api/jobs", limit=20)
    first = cli("jobs", "--limit", "1")
    assert first == api("/api/jobs", limit=1)
    rest = cli("jobs", "--limit", "1", "--cursor", first["nextCursor"])
    assert rest == api("/api/jobs", limit=1, cursor=first["nextCursor"])
    assert [j["id"] for j in first["items"] + rest["items"]] == ["job-later", timeline.job_id]

    shown = cli("jobs", "show", timeline.job_id)
    assert shown == _without_links(api(f"/api/jobs/{timeline.job_id}"))
    assert shown["tasks"][0]["errorGroups"][0]["files"] == [2]  # the 503, once
    assert cli("credits", "--by", "day") == api("/api/credits", by="day")


def test_a_pipe_gets_whole_values(
    make_client: Callable[..., TestClient], database_url: str, tmp_path: Path
) -> None:
    """In a pipe `jobs` prints one tab-separated line per job, a 200-character model whole
    (an 80-column terminal cuts it), and `jobs show` keeps it on one line."""
    model = "m" * 190 + "-long-name"  # the longest a model name is kept
    client = make_client()
    for n in range(3):
        post(client, progress(f"job-{n}", 40, model=model))

    piped = framehook(tmp_path, database_url, "jobs", "--limit", "2")
    rows = [line.split("\t") for line in piped.stdout.splitlines()]
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        (f"job-{n}", model, "PROCESSING", "40", "-") for n in (2, 1)
    ]
    assert all(datetime.fromisoformat(r[5]).tzinfo is not None for r in rows)
    assert "--limit for more" in piped.stderr  # notes stay off standard output

    terminal = framehook(tmp_path, database_url, "jobs", **TERMINAL).stdout
    assert "job-2" in terminal
    assert model not in terminal
    shown = framehook(tmp_path, database_url, "jobs", "show", "job-2").stdout
    assert any(line.split() == ["model", model] for line in shown.splitlines())
