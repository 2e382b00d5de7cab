"""The credit ledger on SQLite and PostgreSQL: completed jobs charged once whatever arrives
twice, late or contradicting, failed jobs refunded, totals by model and by day, the table the
CLI prints, ``GET /api/credits`` and ``framehook_credits_total``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from starlette.testclient import TestClient

from receiver import Settings
from receiver.apiframe.client import ApiframeClient
from receiver.cli.credits import render_credits, run_credits
from receiver.credits import credit_totals, grouping
from receiver.db.models import metadata
from receiver.dev.fakeapi import Behaviour, create_fake_apiframe
from receiver.intake.recorder import Recorder, Subscription
from receiver.metrics import Metrics
from receiver.reconcile.reconciler import Reconciler
from tests.support.processes import framehook_env, run_cli
from tests.support.webhooks import API_KEY, signed_headers, webhook_body

TOKEN = "credits-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DAY_ONE = "2026-11-20T10:00:00.000Z"
DAY_TWO = "2026-11-21T23:59:59.000Z"


def send(client: TestClient, body: dict[str, Any]) -> str:
    raw = orjson.dumps(body)
    answer = client.post("/webhooks/apiframe", content=raw, headers=signed_headers(raw))
    assert answer.status_code in (200, 202), answer.text
    outcome: str = answer.json()["outcome"]
    return outcome


def completed(job: str, model: str, cost: float | None, at: str | None = DAY_ONE) -> dict[str, Any]:
    result = {"images": [f"https://cdn2.apiframe.ai/{job}.png"]}
    return webhook_body(
        "completed", jobId=job, result=result, model=model, completedAt=at, creditCost=cost
    )


def failed(job: str, model: str) -> dict[str, Any]:
    return webhook_body("failed", jobId=job, error="x", model=model)


def history(client: TestClient) -> None:
    """Two midjourney jobs (16 each, one delivered twice and contradicted), a gpt-image-2 job
    (9, on another day, its progress arriving late), a failed and a priceless flux job (both
    ended today, as far as framehook knows)."""
    assert send(client, completed("mj-1", "midjourney", 16)) == "accepted"
    assert send(client, completed("mj-1", "midjourney", 16)) == "duplicate"
    assert send(client, failed("mj-1", "midjourney")) == "conflict"
    assert send(client, completed("mj-2", "midjourney", 16)) == "accepted"
    assert send(client, completed("gpt-1", "gpt-image-2", 9, DAY_TWO)) == "accepted"
    progress = {"event": "progress", "jobId": "gpt-1", "progress": 50, "model": "gpt-image-2"}
    assert send(client, progress) == "stale"
    assert send(client, failed("flux-1", "flux-pro")) == "accepted"
    assert send(client, completed("flux-2", "flux-pro", None, at=None)) == "accepted"


def ledger(db: Engine, by: str = "model", since: datetime | None = None) -> list[tuple[Any, ...]]:
    with db.connect() as connection:
        totals = credit_totals(connection, since, grouping(by))
    return [(r.key, r.completed, r.failed, r.credits) for r in totals.rows]


def test_totals_by_model_charge_each_completed_job_once_and_refund_failures(
    client: TestClient, db: Engine
) -> None:
    """A duplicate or a contradicting failure never charges twice; a failed job counts 0; a
    completed one without creditCost counts 0; highest credits first."""
    history(client)
    assert ledger(db) == [
        ("midjourney", 2, 0, 32.0),
        ("gpt-image-2", 1, 0, 9.0),
        ("flux-pro", 1, 1, 0.0),
    ]


def test_totals_by_day_use_completion_times_in_utc(client: TestClient, db: Engine) -> None:
    """Days come from completedAt (UTC), else when framehook recorded the end; ``since``
    leaves earlier ones out."""
    history(client)
    today = datetime.now(UTC).date().isoformat()
    assert ledger(db, "day") == [
        ("2026-11-20", 2, 0, 32.0),
        ("2026-11-21", 1, 0, 9.0),
        (today, 1, 1, 0.0),
    ]
    since = datetime(2026, 11, 21, tzinfo=UTC)
    assert [row[0] for row in ledger(db, "day", since)] == ["2026-11-21", today]


@pytest.mark.anyio
async def test_a_job_found_by_reconciliation_counts_once(db: Engine) -> None:
    """Polled from the job API, then its webhook arrives: one charge, counted once by the
    metric too."""
    sink = httpx.MockTransport(lambda _request: httpx.Response(202))
    behaviour = Behaviour(step_seconds=0.005, drop_probability=1.0)
    app = create_fake_apiframe(API_KEY, behaviour=behaviour, webhook_transport=sink)
    metrics = Metrics()

    async with app.router.lifespan_context(app):
        api = ApiframeClient(API_KEY, "http://fake.test", transport=httpx.ASGITransport(app))
        job_id = await api.create("images/generate", {"model": "midjourney", "prompt": "x"})
        await app.state.fake.settle()
        recorder = Recorder(db.dialect.name, [Subscription("d", frozenset({"completed"}))])
        reconciler = Reconciler(db, recorder, api, metrics=metrics)
        await reconciler.poll([job_id])
        await reconciler.poll([job_id])
        await api.aclose()
    assert ledger(db) == [("midjourney", 1, 0, 16.0)]
    sample = metrics.registry.get_sample_value("framehook_credits_total", {"model": "midjourney"})
    assert sample == 16


def test_the_table_the_cli_prints(
    client: TestClient, db: Engine, make_settings: Callable[..., Settings]
) -> None:
    """run_credits renders a header, one line per key, a rule and the total; an empty window
    says so; a bad grouping or a negative window is a ValueError."""
    history(client)
    settings = make_settings()
    table = run_credits(settings, None, "model")
    lines = table.splitlines()
    assert lines[0].split() == ["MODEL", "COMPLETED", "FAILED", "CREDITS"]
    assert lines[1].split() == ["midjourney", "2", "0", "32"]
    assert lines[-3].split() == ["total", "4", "1", "41"]
    assert "all time" in lines[-1]
    assert run_credits(settings, timedelta(days=7), "day").splitlines()[0].startswith("DAY")
    with db.connect() as connection:
        empty = credit_totals(connection, datetime.now(UTC) + timedelta(days=1))
    assert render_credits(empty).startswith("no completed or failed jobs since")
    with pytest.raises(ValueError, match="model, day"):
        run_credits(settings, None, "week")
    with pytest.raises(ValueError, match="negative"):
        run_credits(settings, timedelta(days=-1), "model")


def test_fractional_credits_are_shown_with_two_decimals(client: TestClient, db: Engine) -> None:
    """A fractional creditCost is summed exactly and printed with its decimals."""
    send(client, completed("a", "ideogram", 1.25))
    send(client, completed("b", "ideogram", 2))
    with db.connect() as connection:
        table = render_credits(credit_totals(connection))
    assert table.splitlines()[1].split() == ["ideogram", "2", "0", "3.25"]


def test_the_admin_api_shows_the_same_totals(make_client: Callable[..., TestClient]) -> None:
    """GET /api/credits: by model (default) and by day, since an age or a time; bad
    parameters are 400s with a reason; no token is a 401."""
    client = make_client(admin_token=TOKEN)
    history(client)
    by_model = client.get("/api/credits", headers=AUTH).json()
    assert by_model["by"] == "model"
    assert by_model["items"][0] == {"key": "midjourney", "completed": 2, "failed": 0, "credits": 32}
    assert by_model["total"] == {"completed": 4, "failed": 1, "credits": 41}
    by_day = client.get("/api/credits?by=day&since=2026-11-21T00:00:00Z", headers=AUTH).json()
    assert by_day["items"][0]["key"] == "2026-11-21"
    recent = client.get("/api/credits?since=1h", headers=AUTH).json()
    assert recent["total"] == {"completed": 1, "failed": 1, "credits": 0}
    for query, reason in (("by=week", "bad_by"), ("since=soon", "bad_since")):
        answer = client.get(f"/api/credits?{query}", headers=AUTH)
        assert (answer.status_code, answer.json()["reason"]) == (400, reason)
    assert client.get("/api/credits").status_code == 401


def test_metrics_count_credits_by_model_once(client: TestClient) -> None:
    """framehook_credits_total{model} grows by each job's creditCost when its completed event
    is accepted, never for a duplicate, a conflict or a failure."""
    history(client)
    text = client.get("/metrics").text
    found = {
        s.labels["model"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "framehook_credits_total"
    }
    assert found == {"midjourney": 32, "gpt-image-2": 9}


def test_framehook_credits_prints_the_ledger(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    """The command reads the configured database and prints the table; a bad --by or
    --since is a usage error (exit 2) with a message, not a traceback."""
    history(client)
    env = framehook_env(FRAMEHOOK_DATABASE_URL=database_url)
    printed = run_cli(["credits"], env, tmp_path)
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert lines[0].split() == ["MODEL", "COMPLETED", "FAILED", "CREDITS"]
    assert lines[1].split() == ["midjourney", "2", "0", "32"]
    assert any(line.split() == ["total", "4", "1", "41"] for line in lines)
    by_day = run_cli(["credits", "--by", "day", "--since", "3650d"], env, tmp_path)
    assert by_day.returncode == 0
    assert by_day.stdout.startswith("DAY")
    for bad in (["--by", "week"], ["--since", "soon"]):
        refused = run_cli(["credits", *bad], env, tmp_path)
        assert refused.returncode == 2
        assert "Traceback" not in refused.stderr
        assert bad[1] in refused.stderr


def test_costs_stored_before_they_were_checked_count_zero_and_the_ledger_answers(
    make_client: Callable[..., TestClient], db: Engine, make_settings: Callable[..., Settings]
) -> None:
    """Rows written before the intake refused such costs (1e308 twice, infinities, NaN,
    negative) are charged 0: the totals, /api/credits and the CLI's table still answer, and
    the valid jobs beside them still count."""
    client = make_client(admin_token=TOKEN)
    assert send(client, completed("ok", "midjourney", 16)) == "accepted"
    odd = [1e308, 1e308, float("inf"), float("-inf"), -5.0]
    if db.dialect.name == "postgresql":
        odd.append(float("nan"))  # SQLite stores NaN as NULL
    now = datetime.now(UTC)
    jobs = metadata.tables["jobs"]
    with db.begin() as connection:
        connection.execute(
            jobs.insert(),
            [
                {
                    "id": f"odd-{n}",
                    "status": "COMPLETED",
                    "progress": 100,
                    "model": "midjourney",
                    "credit_cost": cost,
                    "created_at": now,
                    "updated_at": now,
                }
                for n, cost in enumerate(odd)
            ],
        )
    assert ledger(db) == [("midjourney", 1 + len(odd), 0, 16.0)]
    assert ledger(db, "day")[-1][1:] == (len(odd), 0, 0.0)
    for by in ("model", "day"):
        answer = client.get(f"/api/credits?by={by}", headers=AUTH)
        assert answer.status_code == 200, answer.text
        assert answer.json()["total"]["credits"] == 16
    assert run_credits(make_settings(), None, "model").splitlines()[1].split()[-1] == "16"
