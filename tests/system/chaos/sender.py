"""The sender: a plan's events, signed, sent concurrently, retried until acknowledged.

It behaves like Apiframe at its most demanding: many requests at once, at a steady rate, and
a retry (after a short, jittered pause) of every request that got no answer or a 5xx. Each
attempt carries its own ``X-Request-Id``, which the receiver stores on the delivery, so the
invariants can find, for every 2xx, the very delivery it acknowledged.

It runs in a thread of its own (``start``/``join``), so a test injects faults from its main
thread while the load runs. Every attempt is also kept in ``timeline`` with when it started and
ended (``time.monotonic``), so a test can tell what was answered while its fault lasted.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from receiver import sign
from receiver.apiframe.signatures import Derivation
from tests.support.webhooks import API_KEY
from tests.system.chaos.plan import Event

__all__ = ["Ack", "Attempt", "Sender"]

PATH = "/webhooks/apiframe"


@dataclass(frozen=True, slots=True)
class Ack:
    """A 2xx answer to one attempt of one event."""

    event: Event
    request_id: str
    status: int
    delivery_id: int
    attempt: int


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt at one event, answered or not.

    Attributes:
        key: the event's key.
        started / ended: ``time.monotonic()`` when the request was sent and when it ended.
        outcome: the HTTP status (``"503"``), or the transport error's name.
        reason: the JSON answer's ``reason`` of a non-2xx answer, if it had one.
        retry_after: the ``Retry-After`` header of the answer, if any.
    """

    key: str
    started: float
    ended: float
    outcome: str
    reason: str | None = None
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        """Whether it was acknowledged (a 2xx)."""
        return self.outcome.isdigit() and 200 <= int(self.outcome) < 300


class Sender:
    """Sends ``events`` to ``base_url`` until each got a 2xx (or ``deadline`` passes).

    Args:
        base_url: the proxy's (or one receiver's) URL.
        events: what to send, in order.
        concurrency: requests in flight at most.
        rate: new events started per second at most (retries are not paced); ``None``: as
            fast as the receivers answer.
        offsets: instead of ``rate``, when (seconds after the start) each event may start at
            the earliest, one per event, in order: a load whose rate changes (a burst).
        deadline: seconds after which events still unacknowledged are given up.
        timeout: one request's time limit (a frozen receiver costs this much per attempt).
        seed: for the retry jitter.
        honour_retry_after: wait at least a 5xx's ``Retry-After`` before retrying it (as a
            well-behaved sender does); otherwise retry after the short backoff alone.
        name: begins every attempt's ``X-Request-Id``: senders of one run need different ones.

    Attributes:
        acks: the acknowledgement of each event, by event key.
        answers: every attempt's outcome: the HTTP status, or the transport error's name.
        rejected: events answered with a 4xx (never retried: a harness or receiver bug).
        timeline: every attempt, in the order they ended.
        started_at: ``time.monotonic()`` when the first event could start.
    """

    def __init__(
        self,
        base_url: str,
        events: Sequence[Event],
        *,
        concurrency: int = 32,
        rate: float | None = None,
        offsets: Sequence[float] | None = None,
        deadline: float = 60.0,
        timeout: float = 5.0,
        seed: int = 0,
        honour_retry_after: bool = False,
        name: str = "chaos",
    ) -> None:
        self.base_url = base_url
        self.events = list(events)
        self.concurrency = concurrency
        self.rate = rate
        if offsets is not None:
            assert len(offsets) == len(self.events), "one offset per event"
        self.offsets = None if offsets is None else list(offsets)
        self.deadline = deadline
        self.timeout = timeout
        self.honour_retry_after = honour_retry_after
        self.name = name
        self.acks: dict[str, Ack] = {}
        self.answers: Counter[str] = Counter()
        self.rejected: dict[str, str] = {}
        self.timeline: list[Attempt] = []
        self.started_at = 0.0
        self.seconds = 0.0
        self._rng = random.Random(seed)
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._started = 0.0

    @property
    def unacknowledged(self) -> list[Event]:
        """Events with no 2xx (yet)."""
        return [e for e in self.events if e.key not in self.acks]

    @property
    def unanswered(self) -> int:
        """Attempts that got no HTTP answer at all (connection refused, reset, timeout)."""
        return sum(n for outcome, n in self.answers.items() if not outcome.isdigit())

    def run(self) -> None:
        """Send everything; return when every event is acknowledged or the deadline passed."""
        started = time.monotonic()
        asyncio.run(self._main())
        self.seconds = time.monotonic() - started

    def start(self) -> None:
        """``run`` in a background thread."""
        self._thread = threading.Thread(target=self._run_captured, name="chaos-sender")
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for a ``start``-ed run to end (by default, a little past its deadline);
        re-raise what failed in it."""
        assert self._thread is not None, "start() first"
        timeout = self.deadline + 10 if timeout is None else timeout
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the sender did not finish in {timeout} s")
        if self._failure is not None:
            raise self._failure

    def is_alive(self) -> bool:
        """Whether a ``start``-ed run is still sending."""
        return self._thread is not None and self._thread.is_alive()

    def _run_captured(self) -> None:
        try:
            self.run()
        except BaseException as exc:
            self._failure = exc

    async def _main(self) -> None:
        todo: asyncio.Queue[tuple[int, Event]] = asyncio.Queue()
        for index, event in enumerate(self.events):
            todo.put_nowait((index, event))
        # One TLS context for every lane's client (the URLs are plain http, but each client
        # would build its own, loading the CA bundle: 30 ms apiece, 8 s for 256 lanes).
        tls = ssl.create_default_context()
        self._started = self.started_at = time.monotonic()
        await asyncio.gather(*(self._lane(todo, tls) for _ in range(self.concurrency)))

    async def _lane(self, todo: asyncio.Queue[tuple[int, Event]], tls: ssl.SSLContext) -> None:
        # A client (one keep-alive connection) per lane: httpx's pool looks through all its
        # connections on every request, which at 32 costs more CPU than the request itself.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(
            base_url=self.base_url, limits=limits, timeout=self.timeout, verify=tls
        ) as client:
            while not todo.empty():
                index, event = todo.get_nowait()
                if self.offsets is not None:
                    start = self._started + self.offsets[index]
                    await asyncio.sleep(max(0.0, start - time.monotonic()))
                elif self.rate is not None:
                    # Event i starts no sooner than i / rate seconds in: a steady load.
                    start = self._started + index / self.rate
                    await asyncio.sleep(max(0.0, start - time.monotonic()))
                await self._deliver(client, index, event)

    async def _deliver(self, client: httpx.AsyncClient, index: int, event: Event) -> None:
        headers = {
            "Content-Type": "application/json",
            "X-Webhook-Event": event.name,
            "X-Webhook-Signature": sign(event.body, API_KEY, Derivation.DIGEST),
        }
        attempt = 0
        while time.monotonic() - self._started < self.deadline:
            attempt += 1
            request_id = f"{self.name}-{index}-{attempt}"
            started = time.monotonic()
            try:
                answer = await client.post(
                    PATH, content=event.body, headers={**headers, "X-Request-Id": request_id}
                )
            except httpx.TransportError as exc:
                self.answers[type(exc).__name__] += 1
                last = Attempt(event.key, started, time.monotonic(), type(exc).__name__)
                self.timeline.append(last)
            else:
                self.answers[str(answer.status_code)] += 1
                last = _attempt(event.key, started, answer)
                self.timeline.append(last)
                if answer.is_success:
                    delivery = int(answer.json()["deliveryId"])
                    self.acks[event.key] = Ack(
                        event, request_id, answer.status_code, delivery, attempt
                    )
                    return
                if answer.status_code < 500:
                    self.rejected[event.key] = f"{answer.status_code} {answer.text}"
                    return
            # No answer, or a 5xx: Apiframe would retry; so do we, after a jittered pause.
            pause = min(1.0, 0.05 * 2 ** min(attempt, 5)) * self._rng.uniform(0.5, 1)
            if self.honour_retry_after and last.retry_after:
                # Not before the server said; jittered upwards, so what it shed together does
                # not come back together.
                pause = max(pause, float(last.retry_after) * self._rng.uniform(1, 1.5))
            await asyncio.sleep(pause)


def _attempt(key: str, started: float, answer: httpx.Response) -> Attempt:
    reason = None
    if not answer.is_success:
        try:
            reason = str(answer.json().get("reason"))
        except (ValueError, AttributeError):
            reason = None  # not a JSON object: the timeline shows the status alone
    return Attempt(
        key,
        started,
        time.monotonic(),
        str(answer.status_code),
        reason,
        answer.headers.get("retry-after"),
    )
