"""The fake against framehook's own receiver: whatever the chaos, the final states agree."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import Engine

from receiver import Settings, create_app
from tests.receiver.dev.fakeapi.conftest import FAST, create_job, running_fake
from tests.support.database import rows
from tests.support.webhooks import OTHER_KEY


@pytest.mark.anyio
async def test_framehook_ends_every_job_as_the_fake_says_despite_chaos(
    make_settings: Callable[..., Settings], db: Engine
) -> None:
    """Duplicated, reordered, delayed webhooks, half of them signed with a rotated key: framehook
    accepts every one (2xx) and ends each job in the status the fake's job API reports."""
    receiver = create_app(make_settings(api_keys=[OTHER_KEY]))
    behaviour = dataclasses.replace(
        FAST,
        duplicate_probability=0.4,
        reorder_probability=0.4,
        delay_probability=0.2,
        delay_seconds=0.02,
        rotated_api_key=OTHER_KEY,
        rotate_after_jobs=4,
    )
    transport = httpx.ASGITransport(receiver)
    async with (
        receiver.router.lifespan_context(receiver),
        running_fake(behaviour, transport=transport, seed=3) as (client, fake),
    ):
        for n in range(8):
            await create_job(
                client,
                prompt="fail" if n % 3 == 0 else "a harbour",
                webhookEvents=["progress", "completed", "failed"],
            )
        await fake.settle()
        codes = Counter(d.status_code for d in fake.deliveries)
        assert set(codes) <= {200, 202}, codes
        assert codes[200] >= sum(d.duplicate for d in fake.deliveries)
        assert any(d.rotated for d in fake.deliveries)
        assert any(d.reordered for d in fake.deliveries)
        expected = {job.id: job.status for job in fake.jobs}
    stored = {r.id: r.status for r in rows(db, "SELECT id, status FROM jobs")}
    assert stored == expected
    assert Counter(expected.values()) == {"COMPLETED": 5, "FAILED": 3}
