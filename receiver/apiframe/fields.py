"""The fields a job event reads, each with what makes a value unusable: then it reads as null.

A webhook is never refused over an optional field: an unusable value reads as ``None`` (the
raw body, kept byte for byte, still has it) and ``receiver.apiframe.events`` flags it on the
delivery. Each check runs here, when the body is parsed, never later: a value that failed only
inside the commit (a time whose UTC conversion overflows, a string longer than its column)
would fail every retry of a webhook Apiframe would then send for ever.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    BeforeValidator,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

from receiver.apiframe.values import MAX_STORED_DEPTH, depth

__all__ = [
    "MAX_CREDIT_COST",
    "MAX_EVENT_NAME_LENGTH",
    "MAX_JOB_ID_LENGTH",
    "MAX_MODEL_LENGTH",
    "CreditCost",
    "ErrorText",
    "JobId",
    "ModelName",
    "Moment",
    "OptionalText",
    "Progress",
    "Result",
]

MAX_JOB_ID_LENGTH = 200
MAX_MODEL_LENGTH = 200
"""As long as ``jobs.model`` holds: a longer "model name" is no model name (made null)."""
MAX_EVENT_NAME_LENGTH = 64
"""Longer event names are stored cut to this (the raw body keeps them whole)."""
MAX_CREDIT_COST = 1e9
"""The most credits one job may cost. No job costs anywhere near it, and totals of costs under
it cannot overflow a double however many jobs are summed; a larger, negative or non-finite
``creditCost`` is made null (and flagged), never charged."""


def _or_none(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        return None


def _as_text(value: Any) -> Any:
    # An error given as an object still deserves to be shown; keep it readable as JSON text.
    if value is None or isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # nested deeper than orjson writes: nothing readable to show
        return None


def _not_bool(value: Any) -> Any:
    # ``true`` is no number, whatever Python's bool says: refuse it (the field becomes null).
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _credit_cost(value: float) -> float:
    if not 0 <= value <= MAX_CREDIT_COST:  # NaN fails this too
        raise ValueError(f"a credit cost is a number in 0..{MAX_CREDIT_COST:g}")
    return value


def _utc(value: datetime) -> datetime:
    # Converted here, not at commit: 9999-12-31T23:59:59-14:00 is a valid datetime whose UTC
    # time is past year 9999, and failing inside the commit would fail every retry too. A time
    # without an offset is read as UTC, which Apiframe's (``...Z``) always are.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range in UTC") from None


def _storable(value: Any) -> Any:
    if depth(value, MAX_STORED_DEPTH) > MAX_STORED_DEPTH:
        raise ValueError(f"nested deeper than {MAX_STORED_DEPTH} levels")
    return value


Lenient = WrapValidator(_or_none)
# Validators in ``Annotated`` wrap those before them: ``Lenient``, last, turns every refusal
# into ``None``.
JobId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_JOB_ID_LENGTH)
]
Number = Annotated[float, BeforeValidator(_not_bool), AfterValidator(_finite)]
"""A finite number (a numeric string too), never a boolean."""
OptionalText = Annotated[str | None, Lenient]
ModelName = Annotated[
    Annotated[str, StringConstraints(max_length=MAX_MODEL_LENGTH)] | None, Lenient
]
Progress = Annotated[Number | None, Lenient]
CreditCost = Annotated[Annotated[Number, AfterValidator(_credit_cost)] | None, Lenient]
Moment = Annotated[Annotated[datetime, AfterValidator(_utc)] | None, Lenient]
Result = Annotated[Any, AfterValidator(_storable), Lenient]
ErrorText = Annotated[str | None, WrapValidator(lambda v, h: h(_as_text(v)))]
"""An error: text, or an object shown as its JSON text."""
