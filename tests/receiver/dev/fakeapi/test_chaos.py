"""Each misbehaviour knob does what it says, and a seed makes a run repeatable."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from receiver.apiframe.signatures import Derivation, SignatureMatch
from receiver.dev.fakeapi import Behaviour
from tests.receiver.dev.fakeapi.conftest import FAST, Sink, create_job, running_fake
from tests.support.webhooks import OTHER_KEY

ALL_EVENTS = ["progress", "completed", "failed"]


def chaos(**changes: Any) -> Behaviour:
    """The fast behaviour with ``changes``."""
    return dataclasses.replace(FAST, **changes)


@pytest.mark.anyio
async def test_duplicates_send_each_webhook_twice_and_are_recorded() -> None:
    """duplicate_probability=1: every event arrives twice, the same bytes; the copy is flagged."""
    sink = Sink()
    async with running_fake(chaos(duplicate_probability=1.0), sink=sink) as (client, fake):
        await create_job(client, webhookEvents=ALL_EVENTS)
        await fake.settle()
        raws = [r.raw for r in sink.received]
        assert len(raws) == 8
        assert raws[0::2] == raws[1::2]
        assert [d.duplicate for d in fake.deliveries] == [False, True] * 4


@pytest.mark.anyio
async def test_reordering_delivers_a_jobs_events_out_of_order() -> None:
    """reorder_probability=1: the job's events arrive all at its end, not in emission order."""
    sink = Sink()
    behaviour = chaos(reorder_probability=1.0, progress_steps=4)
    async with running_fake(behaviour, sink=sink) as (client, fake):
        job_id = await create_job(client, webhookEvents=ALL_EVENTS)
        await fake.settle()
        sequences = [d.sequence for d in fake.deliveries]
        assert sorted(sequences) == [0, 1, 2, 3, 4]
        assert sequences != sorted(sequences)
        assert all(d.reordered for d in fake.deliveries)
        completed_at = (await client.get(f"/v2/jobs/{job_id}")).json()["completedAt"]
    assert [e for e, _ in sink.events()] != ["progress"] * 4 + ["completed"]
    # Held back until the job ended: even the first event left after completion.
    assert all(d.finished_at >= completed_at for d in fake.deliveries)


@pytest.mark.anyio
async def test_drops_never_send_yet_the_job_completes_in_the_api() -> None:
    """drop_probability=1: no webhook arrives; the API says COMPLETED, the webhook failed."""
    sink = Sink()
    async with running_fake(chaos(drop_probability=1.0), sink=sink) as (client, fake):
        job_id = await create_job(client, webhookEvents=ALL_EVENTS)
        await fake.settle()
        assert sink.received == []
        assert len(fake.deliveries) == 4
        assert all(d.dropped and d.attempts == 0 for d in fake.deliveries)
        job = (await client.get(f"/v2/jobs/{job_id}")).json()
        assert (job["status"], job["webhookStatus"]) == ("COMPLETED", "failed")


@pytest.mark.anyio
async def test_delays_send_late_and_let_later_webhooks_overtake() -> None:
    """Delayed webhooks arrive delay_seconds late, overtaken by the job's later, on-time ones;
    the on-time ones keep their order."""
    sink = Sink()
    behaviour = chaos(delay_probability=0.5, delay_seconds=0.3)
    async with running_fake(behaviour, sink=sink, seed=1) as (client, fake):
        started = time.monotonic()
        for _ in range(4):
            await create_job(client, webhookEvents=ALL_EVENTS)
        await fake.settle()
    late = [r for r in sink.received if r.at - started >= 0.3]
    delayed = [d for d in fake.deliveries if d.delayed]
    assert 0 < len(delayed) == len(late) < len(fake.deliveries)
    overtaken = 0
    for job in fake.jobs:
        mine = [d for d in fake.deliveries if d.job_id == job.id]
        on_time = [d.sequence for d in mine if not d.delayed]
        assert on_time == sorted(on_time)
        overtaken += sum(
            d.delayed and any(o.sequence > d.sequence for o in mine[:index])
            for index, d in enumerate(mine)
        )
    assert overtaken > 0


@pytest.mark.anyio
async def test_key_rotation_signs_jobs_after_the_first_n_with_the_new_key() -> None:
    """rotate_after_jobs=1: the first job's webhook verifies with the old key, the second's
    with the rotated one (and not with the old)."""
    sink = Sink()
    behaviour = chaos(rotated_api_key=OTHER_KEY, rotate_after_jobs=1)
    async with running_fake(behaviour, sink=sink) as (client, fake):
        first = await create_job(client)
        await fake.settle()
        second = await create_job(client)
        await fake.settle()
        assert [d.rotated for d in fake.deliveries] == [False, True]
    matches = {r.body["jobId"]: r.match for r in sink.received}
    assert matches[first] == SignatureMatch(0, Derivation.DIGEST)
    assert matches[second] == SignatureMatch(1, Derivation.DIGEST)


@pytest.mark.anyio
async def test_key_rotation_waits_for_rotate_at() -> None:
    """With rotate_at in the future, webhooks keep the old key."""
    sink = Sink()
    later = datetime.now(UTC) + timedelta(hours=1)
    behaviour = chaos(rotated_api_key=OTHER_KEY, rotate_at=later)
    async with running_fake(behaviour, sink=sink) as (client, fake):
        await create_job(client)
        await fake.settle()
    assert sink.received[0].match.key_index == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("field", "status"), [("rate_limit_count", 429), ("unavailable_count", 503)]
)
async def test_the_next_n_api_requests_fail_then_succeed(field: str, status: int) -> None:
    """rate_limit_count / unavailable_count: the next N job API requests get 429 (with
    Retry-After) or 503 and create nothing; then requests succeed."""
    behaviour = chaos(**{field: 2}, retry_after_seconds=7)
    async with running_fake(behaviour) as (client, fake):
        body = {"model": "flux-2-pro", "prompt": "a cat"}
        for _ in range(2):
            response = await client.post("/v2/images/generate", json=body)
            assert response.status_code == status
            assert "error" in response.json()
            if status == 429:
                assert response.headers["retry-after"] == "7"
        assert len(fake.jobs) == 0
        assert (await client.post("/v2/images/generate", json=body)).status_code == 202
        assert (await client.get("/v2/jobs")).status_code == 200
        await fake.settle()


@pytest.mark.anyio
async def test_api_failure_probabilities_apply_to_reads_too() -> None:
    """rate_limit_probability=1 makes every job API read 429; control routes are spared."""
    async with running_fake(chaos(rate_limit_probability=1.0)) as (client, _):
        assert (await client.get("/v2/jobs")).status_code == 429
        assert (await client.get("/_fake/deliveries")).status_code == 200
    async with running_fake(chaos(unavailable_probability=1.0)) as (client, _):
        assert (await client.get("/v2/jobs")).status_code == 503


@pytest.mark.anyio
async def test_expired_assets_are_404_and_the_job_says_expired() -> None:
    """expire_after_seconds=0: once completed, the CDN answers 404 and `expired` is true."""
    sink = Sink()
    async with running_fake(chaos(expire_after_seconds=0.0), sink=sink) as (client, fake):
        job_id = await create_job(client)
        await fake.settle()
        job = (await client.get(f"/v2/jobs/{job_id}")).json()
        assert job["expired"] is True
        assert (await client.get(job["result"]["gridUrl"])).status_code == 404


@pytest.mark.anyio
async def test_a_job_expires_through_the_control_route() -> None:
    """POST /_fake/jobs/:id/expire expires one job's assets now; the others stay."""
    sink = Sink()
    async with running_fake(sink=sink) as (client, fake):
        gone, kept = await create_job(client), await create_job(client)
        await fake.settle()
        assert (await client.post(f"/_fake/jobs/{gone}/expire")).status_code == 200
        for job_id, expired, status in [(gone, True, 404), (kept, False, 200)]:
            job = (await client.get(f"/v2/jobs/{job_id}")).json()
            assert job["expired"] is expired
            assert (await client.get(job["result"]["images"][0])).status_code == status
        missing = await client.post("/_fake/jobs/6f1c2a9e-3b7d-4e21-9a55-0c8d2f4b7a10/expire")
        assert missing.status_code == 404


@pytest.mark.anyio
async def test_random_failures_follow_fail_probability() -> None:
    """fail_probability=1 fails a job whatever its prompt."""
    sink = Sink()
    async with running_fake(chaos(fail_probability=1.0), sink=sink) as (client, fake):
        await create_job(client, prompt="a perfectly fine cat")
        await fake.settle()
    assert sink.events() == [("failed", None)]


@pytest.mark.anyio
async def test_the_same_seed_makes_the_same_decisions() -> None:
    """Two runs with one seed drop, duplicate and delay the same webhooks; another seed differs."""
    behaviour = chaos(
        duplicate_probability=0.5, drop_probability=0.3, delay_probability=0.3, progress_steps=6
    )

    async def run(seed: int) -> list[tuple[int, int, bool, bool, bool]]:
        async with running_fake(behaviour, seed=seed) as (client, fake):
            for _ in range(4):
                await create_job(client, webhookEvents=ALL_EVENTS)
            await fake.settle()
            numbers = {job.id: job.number for job in fake.jobs}
            return sorted(
                (numbers[d.job_id], d.sequence, d.duplicate, d.dropped, d.delayed)
                for d in fake.deliveries
            )

    first, again, other = [await run(seed) for seed in (7, 7, 8)]
    assert first == again
    assert first != other


@pytest.mark.anyio
async def test_behaviour_changes_at_runtime_through_the_control_route() -> None:
    """POST /_fake/behaviour changes the given fields only; bad ones are 400 and change nothing."""
    async with running_fake() as (client, fake):
        response = await client.post(
            "/_fake/behaviour",
            json={"drop_probability": 1, "rotate_at": "2030-01-01T00:00:00Z"},
        )
        assert response.status_code == 200
        assert response.json()["drop_probability"] == 1.0
        assert fake.behaviour.drop_probability == 1.0
        assert fake.behaviour.rotate_at == datetime(2030, 1, 1, tzinfo=UTC)
        assert fake.behaviour.step_seconds == FAST.step_seconds
        for bad in (
            {"drop_probability": 2},
            {"no_such_knob": 1},
            {"step_seconds": "slow"},
            [1],
        ):
            refused = await client.post("/_fake/behaviour", json=bad)
            assert refused.status_code == 400
            assert refused.json()["error"]
        assert (await client.get("/_fake/behaviour")).json() == response.json()


@pytest.mark.anyio
async def test_the_delivery_record_is_served_as_json() -> None:
    """GET /_fake/deliveries lists each delivery with its job, event, status and flags."""
    async with running_fake() as (client, fake):
        job_id = await create_job(client)
        await fake.settle()
        record = (await client.get("/_fake/deliveries")).json()
    assert record["jobs"] == 1
    assert record["pending"] == 0
    [delivery] = record["deliveries"]
    assert delivery["jobId"] == job_id
    assert (delivery["event"], delivery["statusCode"], delivery["attempts"]) == (
        "completed",
        202,
        1,
    )
    assert delivery["duplicate"] is delivery["dropped"] is False


def test_an_out_of_range_behaviour_is_refused_in_code_too() -> None:
    """Behaviour(...) itself refuses a probability above 1 or a negative time."""
    with pytest.raises(ValueError, match="duplicate_probability"):
        Behaviour(duplicate_probability=1.5)
    with pytest.raises(ValueError, match="step_seconds"):
        Behaviour(step_seconds=-1)
