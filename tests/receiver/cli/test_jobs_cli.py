"""`framehook jobs` and `framehook jobs show ID`, reading the database the receiver filled."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from receiver.cli import app
from receiver.cli.tables import capture
from tests.receiver.admin.scenario import build_timeline, completed, post, progress


def jobs(database_url: str, *args: str) -> Result:
    """Run `framehook jobs ARGS --database-url URL` in-process, on a wide terminal (a dumb
    one: no colour codes in what the test reads; Rich takes its size from COLUMNS and LINES
    only when both are set)."""
    terminal = {"TTY_COMPATIBLE": "1", "TERM": "dumb", "COLUMNS": "200", "LINES": "50"}
    env = {**terminal, "FRAMEHOOK_DATABASE_URL": None}
    return CliRunner().invoke(app, ["jobs", *args, "--database-url", database_url], env=env)


def test_jobs_lists_newest_first_with_files_and_age(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """One row per job, newest first: id, model, status, progress, files captured, age."""
    client = make_client()
    post(client, progress("job-old", 45, model="midjourney"))
    post(client, completed("job-new", "https://x.test/n.png", model="flux-pro"))
    result = jobs(database_url)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "job-" in line]
    assert [line.split()[1] for line in lines] == ["job-new", "job-old"]
    assert {"flux-pro", "COMPLETED", "100%"} <= set(lines[0].split())
    assert {"midjourney", "PROCESSING", "45%"} <= set(lines[1].split())
    assert lines[1].split("│")[-2].strip().endswith("s")  # age: seconds


def test_jobs_filters_by_status_and_model_and_limits(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """--status (any case), --model and --limit narrow the list; more rows are hinted at."""
    client = make_client()
    for n in range(3):
        post(client, progress(f"job-p{n}", 10, model="kling"))
    post(client, completed("job-c", "https://x.test/c.png", model="flux-pro"))
    only_completed = jobs(database_url, "--status", "completed")
    assert "job-c" in only_completed.output
    assert "job-p" not in only_completed.output
    kling = jobs(database_url, "--model", "kling", "--limit", "2")
    assert kling.exit_code == 0
    assert [n for n in ("job-p0", "job-p1", "job-p2") if n in kling.output] == ["job-p1", "job-p2"]
    assert "--limit for more" in kling.output
    assert "no jobs match" in jobs(database_url, "--model", "nobody").output
    since = jobs(database_url, "--since", "1h")
    assert all(f"job-p{n}" in since.output for n in range(3))


def test_jobs_show_prints_the_whole_timeline(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """Deliveries with their outcomes, the task with each attempt and its error, the files."""
    timeline = build_timeline(make_client)
    result = jobs(database_url, "show", timeline.job_id)
    assert result.exit_code == 0, result.output
    out = result.output
    expected = [
        f"job {timeline.job_id}",
        "COMPLETED",
        *("accepted", "duplicate", "stale", "conflict"),  # the deliveries
        *("download", "succeeded", "#1", "retry", "503", "#2"),  # the task and its attempts
        *(f"{len(data):,}" for _url, data in timeline.files),  # the files' sizes
    ]
    assert [text for text in expected if text not in out] == []
    assert out.count("memory://") == 2


def test_unknown_jobs_and_unusable_databases_fail_clearly(
    make_client: Callable[..., TestClient], database_url: str, tmp_path: Path
) -> None:
    """An unknown id exits 1; a missing database, a bad status or URL exit 2, no traceback."""
    make_client()
    unknown = jobs(database_url, "show", "no-such-job")
    assert unknown.exit_code == 1
    assert "no job 'no-such-job'" in unknown.output
    assert "no jobs yet" in jobs(database_url).output
    missing = jobs(f"sqlite:///{tmp_path / 'nowhere' / 'fh.db'}")
    assert missing.exit_code == 2
    assert "no database at" in missing.output
    assert not (tmp_path / "nowhere").exists()
    assert jobs(database_url, "--status", "DONE").exit_code == 2
    bad_url = jobs("mysql://x/y")
    assert bad_url.exit_code == 2
    assert "unsupported database" in bad_url.output
    assert "Traceback" not in missing.output + bad_url.output


def test_jobs_shows_how_many_of_the_files_each_result_names_are_stored(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """The captured column: 2/2 for a job whose files are stored, 0/2 for one whose files are
    not, — for a job that has not ended; `jobs show` says it too."""
    timeline = build_timeline(make_client)
    nowhere = ["https://x.test/1.png", "https://x.test/2.png"]
    post(timeline.client, completed("job-missing", {"images": nowhere}))
    post(timeline.client, progress("job-running", 40))
    result = jobs(database_url)
    assert result.exit_code == 0, result.output
    # Table rows only: the timeline's worker may log (job ids included) while the CLI runs.
    cells = {
        line.split()[1]: line.split("│")[-3].strip()
        for line in result.output.splitlines()
        if "job-" in line and line.count("│") >= 3
    }
    assert cells == {timeline.job_id: "2/2", "job-missing": "0/2", "job-running": "—"}
    shown = jobs(database_url, "show", "job-missing")
    assert "0/2 stored" in shown.output
    assert "2/2 stored" in jobs(database_url, "show", timeline.job_id).output


def test_a_shortfall_is_red_and_nothing_to_capture_is_a_dash() -> None:
    """All stored is green, fewer than expected bold red, no file named (or not ended) a dash;
    a job that ended before files were counted shows what it stored."""
    cells = [capture({"expected": e, "stored": s}) for e, s in ((4, 4), (2, 0), (0, 0), (None, 0))]
    assert [(c.plain, str(c.style)) for c in cells] == [
        ("4/4", "green"),
        ("0/2", "bold red"),
        ("—", "dim"),
        ("—", "dim"),
    ]
    assert capture({"expected": None, "stored": 3}).plain == "3"
