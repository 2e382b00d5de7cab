"""A job's life in the fake, and its webhooks: the background half of the fake Apiframe.

A job waits a step, turns ``PROCESSING``, emits a few ``progress`` events, then ends
``COMPLETED`` (or ``FAILED``) and emits that. The job's state changes before its webhook
leaves, so a receiver that polls the job API on a webhook sees at least that state. Its result
and its webhook bodies take the shapes the behaviour asks for (``receiver.dev.fakeapi.shapes``),
each decided by dice of their own, so the other decisions of a seed stay what they were. A job's
webhooks go out one after another, in order, unless the behaviour delays (sent late, on their
own), holds back (sent shuffled once the job ends) or drops them. LoRA trainings
(``receiver.dev.fakeapi.loras``) run here too and send their one terminal webhook.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import uuid
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from receiver.dev.fakeapi.bodies import (
    completed_body,
    credit_cost,
    failed_body,
    file_paths,
    output_for,
    progress_body,
    result_for,
)
from receiver.dev.fakeapi.chaos import ApiChaos, Behaviour, Dice
from receiver.dev.fakeapi.idempotency import IdempotencyStore
from receiver.dev.fakeapi.jobs import Job, JobStore
from receiver.dev.fakeapi.loras import FakeLora, LoraStore, lora_webhook_body, train
from receiver.dev.fakeapi.sealing import webhook_url_problem
from receiver.dev.fakeapi.shapes import (
    EVENT_FIELDS,
    UNSEEN_SHAPES,
    named_by,
    tracks_as_array,
    unseen_result,
)
from receiver.dev.fakeapi.webhooks import Delivery, Outgoing, SealedTransport, deliver, dropped

__all__ = ["FakeApiframe"]

TERMINAL_EVENTS = frozenset({"completed", "failed"})


class FakeApiframe:
    """The fake's state and background work; ``create_fake_apiframe`` serves it over HTTP.

    Args:
        api_key: the key clients must send and whose digest signs the webhooks.
        behaviour: what the fake does; change it later with :meth:`set_behaviour`.
        seed: seeds every random decision (with each job's number).
        base_url: the fake's public URL, for result URLs; else the URL each job was created at.
        webhook_transport: the transport webhooks go through (tests pass an ASGI or mock one).
            A transport given here is trusted to decide where webhooks go, so it is not sealed
            (wrap it in ``webhooks.SealedTransport`` to seal it).
        allow_public_webhooks: send webhooks to public addresses too; by default the fake is
            sealed (``receiver.dev.fakeapi.sealing``) when it sends over the network itself.

    Attributes:
        jobs: every job accepted.
        loras: every LoRA training accepted.
        idempotency: the ``Idempotency-Key`` values seen, and the job each one created.
        deliveries: what became of each webhook, in the order deliveries ended.
        errors: exceptions raised by background tasks (a bug in the fake, not chaos).
    """

    def __init__(
        self,
        api_key: str,
        behaviour: Behaviour | None = None,
        *,
        seed: int = 0,
        base_url: str | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        allow_public_webhooks: bool = False,
    ) -> None:
        self.api_key = api_key
        # Only the fake's own network sends are sealed: a given transport (a MockTransport, an
        # ASGITransport) keeps the webhooks in the process, whatever host their URL names.
        self.sealed = webhook_transport is None and not allow_public_webhooks
        self.base_url = base_url.rstrip("/") if base_url else None
        self.jobs = JobStore()
        self.loras = LoraStore()
        self.idempotency = IdempotencyStore()
        self.deliveries: list[Delivery] = []
        self.errors: list[BaseException] = []
        self._behaviour = behaviour or Behaviour()
        self._seed = seed
        self._api_chaos = ApiChaos(self._behaviour, f"{seed}:api")
        self._transport = webhook_transport
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._chains: dict[str, asyncio.Task[None]] = {}

    @property
    def behaviour(self) -> Behaviour:
        """What the fake does now."""
        return self._behaviour

    def set_behaviour(self, behaviour: Behaviour) -> None:
        """Change what the fake does from now on (429/503 counts start again)."""
        self._behaviour = behaviour
        self._api_chaos.reset(behaviour)

    @property
    def pending(self) -> int:
        """Background tasks still running (jobs and webhooks)."""
        return len(self._tasks)

    async def start(self) -> None:
        """Open the webhook client (the app's lifespan calls this)."""
        # Webhooks go straight to their URL, whatever proxy the environment names.
        transport = SealedTransport() if self.sealed else self._transport
        self._client = httpx.AsyncClient(transport=transport, trust_env=False)

    async def webhook_url_problem(self, url: str | None) -> str | None:
        """Why this fake refuses ``url`` as a ``webhookUrl`` (sealed, and public), or ``None``."""
        return await webhook_url_problem(url) if url and self.sealed else None

    async def stop(self) -> None:
        """Cancel the background work and close the client (the app's lifespan calls this)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def settle(self) -> None:
        """Wait until every job has ended and every webhook has been delivered or given up
        (wrap it in ``asyncio.timeout`` to bound the wait).

        Raises:
            RuntimeError: a background task failed (the cause is attached).
        """
        while self._tasks:
            await asyncio.wait(set(self._tasks))
        if self.errors:
            raise RuntimeError("a fake Apiframe background task failed") from self.errors[0]

    def api_status(self) -> int | None:
        """429 or 503 if the behaviour says this job API request fails, else ``None``."""
        return self._api_chaos.status(self._behaviour)

    def is_expired(self, job: Job) -> bool:
        """Whether ``job``'s assets are gone."""
        return job.expired(self._behaviour.expire_after_seconds, datetime.now(UTC))

    def create_job(
        self,
        operation: str,
        model: str,
        request: dict[str, Any],
        *,
        request_base_url: str,
        webhook_url: str | None,
        webhook_events: frozenset[str],
    ) -> Job:
        """Accept a job and start running it in the background.

        Raises:
            RuntimeError: the fake is not started (its app's lifespan has not run).
        """
        if self._client is None:
            raise RuntimeError("the fake Apiframe is not started: run its app's lifespan")
        subscribed = webhook_url is not None and bool(webhook_events & TERMINAL_EVENTS)
        job = Job(
            id=str(uuid.uuid4()),
            number=self.jobs.next_number(),
            operation=operation,
            model=model,
            output=output_for(operation, model, request),
            input=request,
            webhook_url=webhook_url,
            webhook_events=webhook_events,
            asset_base_url=f"{self.base_url or request_base_url.rstrip('/')}/cdn",
            webhook_status="pending" if subscribed else None,
        )
        self.jobs.add(job)
        self._spawn(self._run(job))
        return job

    def create_lora(self, request: dict[str, Any]) -> FakeLora:
        """Accept a LoRA training (``lora_request``'s values) and start it in the background.

        Raises:
            RuntimeError: the fake is not started (its app's lifespan has not run).
        """
        if self._client is None:
            raise RuntimeError("the fake Apiframe is not started: run its app's lifespan")
        number = len(self.loras) + 1
        lora = FakeLora(id=self.loras.new_id(self._behaviour.lora_ids), number=number, **request)
        self.loras.add(lora)
        self._spawn(self._train(lora))
        return lora

    async def _train(self, lora: FakeLora) -> None:
        dice = Dice(f"{self._seed}:lora:{lora.number}")
        if not await train(lora, lambda: self._behaviour, dice):
            return
        body = lora_webhook_body(lora)
        event = str(body["event"])
        if lora.webhook_url is None or event not in lora.webhook_events:
            return
        outgoing = Outgoing(lora.id, 0, event, None, lora.webhook_url, orjson.dumps(body))
        behaviour = self._behaviour
        if dice.roll(behaviour.drop_probability):
            self.deliveries.append(dropped(outgoing))
            return
        copies = [outgoing]
        if dice.roll(behaviour.duplicate_probability):
            copies.append(dataclasses.replace(outgoing, duplicate=True))
        assert self._client is not None
        for copy in copies:
            delivery = await deliver(
                self._client,
                copy,
                self.api_key,
                retries=behaviour.webhook_retries,
                backoff_seconds=behaviour.webhook_backoff_seconds,
                timeout_seconds=behaviour.webhook_timeout_seconds,
            )
            self.deliveries.append(delivery)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self.errors.append(error)

    def _result(self, job: Job) -> Any:
        behaviour = self._behaviour
        dice = Dice(f"{self._seed}:shape:{job.number}")
        if dice.roll(behaviour.unseen_result_probability):
            base = job.asset_base_url.rstrip("/")
            urls = [f"{base}/{path}" for path in file_paths(job.output, job.id)]
            return unseen_result(dice.choice(UNSEEN_SHAPES), urls)
        result = result_for(job.output, job.id, job.asset_base_url)
        if behaviour.music_results == "array" and job.output.shape == "tracks":
            return tracks_as_array(result)
        return result

    async def _run(self, job: Job) -> None:
        dice = Dice(f"{self._seed}:job:{job.number}")
        names = Dice(f"{self._seed}:names:{job.number}")
        held: list[Outgoing] | None = [] if dice.roll(self._behaviour.reorder_probability) else None
        sequence = itertools.count()
        await asyncio.sleep(self._behaviour.step_seconds)
        job.status = "PROCESSING"
        for percentage in dice.percentages(self._behaviour.progress_steps):
            job.progress = percentage
            body = progress_body(job.id, job.model, percentage)
            self._emit(job, dice, next(sequence), body, held, names)
            await asyncio.sleep(self._behaviour.step_seconds)
        behaviour = self._behaviour
        marker = behaviour.fail_marker.lower()
        fails = bool(marker) and marker in job.prompt.lower()
        fails = dice.roll(behaviour.fail_probability) or fails
        job.completed_at = datetime.now(UTC)
        if fails:
            job.status, job.error, job.credit_cost = "FAILED", behaviour.failure_error, 0
            body = failed_body(job.id, job.model, job.error)
        else:
            job.result = self._result(job)
            job.files = tuple(file_paths(job.output, job.id))
            job.credit_cost = credit_cost(job.model, job.output)
            job.status, job.progress = "COMPLETED", 100
            body = completed_body(job.id, job.model, job.result, job.credit_cost, job.completed_at)
        self._emit(job, dice, next(sequence), body, held, names)
        if held:
            self._dispatch(job, dice.shuffled(held))

    def _emit(
        self,
        job: Job,
        dice: Dice,
        sequence: int,
        body: dict[str, Any],
        held: list[Outgoing] | None,
        names: Dice,
    ) -> None:
        """Send (or hold, or drop) a webhook; ``names`` picks where the body names its event
        under ``event_field: mixed``."""
        event = str(body["event"])
        field = self._behaviour.event_field
        body = named_by(body, names.choice(EVENT_FIELDS) if field == "mixed" else field)
        if job.webhook_url is None or event not in job.webhook_events:
            return
        behaviour = self._behaviour
        drop = dice.roll(behaviour.drop_probability)
        duplicate = dice.roll(behaviour.duplicate_probability)
        delay = dice.roll(behaviour.delay_probability)
        outgoing = Outgoing(
            job_id=job.id,
            sequence=sequence,
            event=event,
            progress=body.get("progress"),
            url=job.webhook_url,
            body=orjson.dumps(body),
            delayed=delay,
            reordered=held is not None,
        )
        if drop:
            self._record(job, dropped(outgoing))
            return
        copies = [outgoing]
        if duplicate:
            copies.append(dataclasses.replace(outgoing, duplicate=True))
        if held is not None:
            held.extend(copies)
        else:
            self._dispatch(job, copies)

    def _dispatch(self, job: Job, copies: Sequence[Outgoing]) -> None:
        # Delayed webhooks go on their own, so later ones overtake them; the others follow
        # the job's previous webhooks in order.
        late = [c for c in copies if c.delayed]
        on_time = [c for c in copies if not c.delayed]
        if late:
            self._spawn(self._send(job, late, after=None, delay=self._behaviour.delay_seconds))
        if on_time:
            previous = self._chains.get(job.id)
            self._chains[job.id] = self._spawn(self._send(job, on_time, after=previous))

    async def _send(
        self,
        job: Job,
        copies: Sequence[Outgoing],
        *,
        after: asyncio.Task[None] | None,
        delay: float = 0.0,
    ) -> None:
        if after is not None:
            await asyncio.wait({after})
        if delay:
            await asyncio.sleep(delay)
        assert self._client is not None
        for outgoing in copies:
            behaviour = self._behaviour
            rotated = behaviour.rotates(job.number, datetime.now(UTC))
            key = behaviour.rotated_api_key if rotated else self.api_key
            assert key is not None
            delivery = await deliver(
                self._client,
                outgoing,
                key,
                rotated=rotated,
                retries=behaviour.webhook_retries,
                backoff_seconds=behaviour.webhook_backoff_seconds,
                timeout_seconds=behaviour.webhook_timeout_seconds,
            )
            self._record(job, delivery)
        if self._chains.get(job.id) is asyncio.current_task():
            del self._chains[job.id]

    def _record(self, job: Job, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        if delivery.event in TERMINAL_EVENTS:
            if delivery.delivered:
                job.webhook_status = "delivered"
            elif job.webhook_status != "delivered":
                job.webhook_status = "failed"
