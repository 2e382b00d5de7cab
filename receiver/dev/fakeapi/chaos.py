"""How the fake Apiframe misbehaves: one frozen ``Behaviour`` value and seeded dice.

Every random decision is drawn from a ``random.Random`` seeded by the fake's seed and the job's
number (or ``api`` for the job API), so the same seed and behaviour give the same run whatever
order the jobs' tasks interleave in.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import TypeAdapter, ValidationError

from receiver.dev.fakeapi.shapes import EventField

__all__ = ["ApiChaos", "Behaviour", "Dice", "behaviour_as_json", "updated_behaviour"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What the fake does, well or badly. The defaults are a well-behaved, slowish Apiframe.

    Attributes:
        step_seconds: time between a job's steps (queued, each progress, the end).
        progress_steps: how many ``progress`` events a job emits (increasing percentages).
        fail_marker: a job whose prompt contains this (any case) fails.
        fail_probability: chance that any other job fails.
        failure_error: the ``error`` of a failed job.
        duplicate_probability: chance that a webhook is sent a second time, right after.
        reorder_probability: chance that a job's webhooks are held back and sent, once it
            ends, in another order.
        delay_probability: chance that a webhook is sent ``delay_seconds`` late (later ones
            overtake it).
        delay_seconds: how late a delayed webhook is.
        drop_probability: chance that a webhook is never sent (the job still ends in the API).
        rotated_api_key: once set, webhooks are signed with this key instead, for jobs after
            the first ``rotate_after_jobs`` and from ``rotate_at`` on.
        rotate_after_jobs: how many jobs (counted from the fake's start) keep the old key.
        rotate_at: when the rotation happens (always, when ``None``).
        rate_limit_count: the next this-many job API requests answer 429.
        rate_limit_probability: chance that a job API request answers 429.
        retry_after_seconds: the ``Retry-After`` of a 429.
        unavailable_count: the next this-many job API requests answer 503.
        unavailable_probability: chance that a job API request answers 503.
        expire_after_seconds: a finished job's assets expire (CDN 404, ``expired: true``) this
            long after it ends; never when ``None``.
        webhook_retries: how many times a webhook answered 5xx (or not at all) is sent again.
        webhook_backoff_seconds: the first retry's wait, doubled for each next one.
        webhook_timeout_seconds: how long a webhook waits for its answer.
        lora_step_seconds: time between a LoRA training's statuses (``PENDING``,
            ``UPLOADING``, ``TRAINING``, the end); Apiframe takes 15 to 25 minutes in all.
        lora_ids: ``uuid`` LoRA ids (as Apiframe's OpenAPI spec says) or ``prefixed``
            (``lora_<hex>``, as its prose docs show): framehook must take both.
        music_results: ``tracks`` (``{"tracks": [...]}``, as Apiframe's guides show) or
            ``array`` (the array of tracks itself, as its OpenAPI spec says of music).
        unseen_result_probability: chance that a completed job's result comes in a shape no
            Apiframe document shows (``shapes.unseen_result``: a bare array of URLs,
            ``{"images": [{"url": …}]}``, ``{"audioUrl": …, "imageUrl": …}``, nested unknown
            keys), picked by the dice; the files are the same.
        event_field: where a job webhook's body names its event: ``event`` (Apiframe's docs),
            ``type`` (the SDK's docs), ``status`` (no event, only the job's status: the SDK's
            tests), or ``mixed`` (each webhook one of the three, by the dice). The
            ``X-Webhook-Event`` header names the event whatever the body does.
    """

    step_seconds: float = 0.5
    progress_steps: int = 3
    fail_marker: str = "fail"
    fail_probability: float = 0.0
    failure_error: str = "Provider returned an error: content policy violation"
    duplicate_probability: float = 0.0
    reorder_probability: float = 0.0
    delay_probability: float = 0.0
    delay_seconds: float = 0.0
    drop_probability: float = 0.0
    rotated_api_key: str | None = None
    rotate_after_jobs: int = 0
    rotate_at: datetime | None = None
    rate_limit_count: int = 0
    rate_limit_probability: float = 0.0
    retry_after_seconds: int = 1
    unavailable_count: int = 0
    unavailable_probability: float = 0.0
    expire_after_seconds: float | None = None
    webhook_retries: int = 3
    webhook_backoff_seconds: float = 0.5
    webhook_timeout_seconds: float = 10.0
    lora_step_seconds: float = 1.0
    lora_ids: Literal["prefixed", "uuid"] = "uuid"
    music_results: Literal["tracks", "array"] = "tracks"
    unseen_result_probability: float = 0.0
    event_field: EventField | Literal["mixed"] = "event"

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name.endswith("_probability") and not 0.0 <= value <= 1.0:
                raise ValueError(f"{field.name} must be between 0 and 1, not {value}")
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"{field.name} must not be negative, not {value}")
        if self.rotate_at is not None and self.rotate_at.tzinfo is None:
            raise ValueError("rotate_at must be timezone-aware")

    def rotates(self, job_number: int, now: datetime) -> bool:
        """Whether a webhook of the ``job_number``-th job (from 1), sent now, uses the new key."""
        return (
            self.rotated_api_key is not None
            and job_number > self.rotate_after_jobs
            and (self.rotate_at is None or now >= self.rotate_at)
        )


_ADAPTER = TypeAdapter(Behaviour)


def behaviour_as_json(behaviour: Behaviour) -> dict[str, Any]:
    """``behaviour`` as JSON-ready values (times in ISO 8601)."""
    data: dict[str, Any] = _ADAPTER.dump_python(behaviour, mode="json")
    return data


def updated_behaviour(current: Behaviour, changes: Mapping[str, Any]) -> Behaviour:
    """``current`` with ``changes`` (JSON values, as the control route receives them).

    Raises:
        ValueError: an unknown field, a value of the wrong type, or one out of range.
    """
    known = {field.name for field in dataclasses.fields(Behaviour)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"unknown behaviour field(s): {', '.join(unknown)}")
    merged = {**behaviour_as_json(current), **changes}
    try:
        return _ADAPTER.validate_python(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'behaviour'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(problems) from None


class Dice:
    """Seeded random decisions; every roll draws, so one seed gives one sequence."""

    __slots__ = ("_rng",)

    def __init__(self, seed: str) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - reproducible chaos, not secrets

    def roll(self, probability: float) -> bool:
        """True with ``probability``."""
        return self._rng.random() < probability

    def percentages(self, count: int) -> list[int]:
        """``count`` increasing percentages between 1 and 99, one in each of ``count`` bands."""
        count = min(count, 98)
        return [
            self._rng.randint(1 + band * 98 // count, (band + 1) * 98 // count)
            for band in range(count)
        ]

    def choice(self, items: Sequence[_T]) -> _T:
        """One of ``items`` (not empty)."""
        return self._rng.choice(items)

    def shuffled(self, items: list[Any]) -> list[Any]:
        """``items`` in another order (reversed if the shuffle happened to change nothing)."""
        order = list(items)
        self._rng.shuffle(order)
        return order[::-1] if order == items else order


class ApiChaos:
    """Decides which job API requests answer 429 or 503: counts first, then probabilities."""

    __slots__ = ("_dice", "_rate_limited", "_unavailable")

    def __init__(self, behaviour: Behaviour, seed: str) -> None:
        self._dice = Dice(seed)
        self.reset(behaviour)

    def reset(self, behaviour: Behaviour) -> None:
        """Start counting ``behaviour``'s 429 and 503 counts again."""
        self._rate_limited = behaviour.rate_limit_count
        self._unavailable = behaviour.unavailable_count

    def status(self, behaviour: Behaviour) -> int | None:
        """429 or 503 for this request, or ``None`` to answer it normally."""
        if self._unavailable > 0:
            self._unavailable -= 1
            return 503
        if self._rate_limited > 0:
            self._rate_limited -= 1
            return 429
        unavailable = self._dice.roll(behaviour.unavailable_probability)
        rate_limited = self._dice.roll(behaviour.rate_limit_probability)
        if unavailable:
            return 503
        return 429 if rate_limited else None
