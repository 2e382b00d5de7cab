"""The admin API described in OpenAPI 3.1 (served at ``/api/openapi.json``).

The ``paths`` are written by hand, next to the routes they describe: they are the
documentation. The ``components.schemas`` are generated (pydantic) from the TypedDicts in
``receiver.admin.views`` that the endpoints return, so a field is declared once. The tests run
schemathesis against the whole, so a route or field that drifts from it fails them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from receiver.admin.content import MAX_EXPIRES_DIGITS
from receiver.admin.paging import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT
from receiver.admin.queries import TASK_STATUSES
from receiver.admin.views import (
    CreditsView,
    DeliveryView,
    DeliveryWithBodyView,
    ErrorView,
    JobTimelineView,
    JobView,
    PageView,
    ReplayedView,
    RetriedView,
    TaskView,
)
from receiver.credits import GROUPINGS
from receiver.db.models import TaskStatus
from receiver.durations import AGE_PATTERN
from receiver.intake.arrivals import DeliveryOutcome
from receiver.intake.job_state import JobStatus

__all__ = ["OPENAPI"]

Schema = dict[str, Any]
_REF = "#/components/schemas/{model}"


class _ApiSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema, named as the API has always named its objects (``JobView`` is
    ``Job``, ``PageView[JobView]`` is ``JobPage``), each object closed to other keys."""

    def normalize_name(self, name: str) -> str:
        page = re.fullmatch(r"PageView\[(\w+)View\]", name)
        if page is not None:
            return f"{page[1]}Page"
        return super().normalize_name(name.removesuffix("View"))

    def typed_dict_schema(self, schema: core_schema.TypedDictSchema) -> JsonSchemaValue:
        generated = super().typed_dict_schema(schema)
        # An answer holds exactly the declared keys: schemathesis then catches a stray one.
        generated["additionalProperties"] = False
        # The class name ("JobView") says less than the component's own name.
        generated.pop("title", None)
        return generated

    def field_title_should_be_set(self, schema: CoreSchema | Any) -> bool:
        # "Jobid" titles under every property repeat the property's name, worse.
        return False


# What the endpoints answer, and the vocabularies the parameters share with them.
_DECLARED: tuple[Any, ...] = (
    JobStatus,
    DeliveryOutcome,
    PageView[JobView],
    PageView[DeliveryView],
    PageView[TaskView],
    JobTimelineView,
    DeliveryWithBodyView,
    RetriedView,
    ReplayedView,
    CreditsView,
    ErrorView,
)
_refs, _generated = TypeAdapter.json_schemas(
    [(view, "serialization", TypeAdapter(view)) for view in _DECLARED],
    ref_template=_REF,
    schema_generator=_ApiSchema,
)
_SCHEMAS: dict[str, Schema] = _generated["$defs"]


def _ref(view: Any) -> Schema:
    """``{"$ref": ...}`` to the component generated from ``view``."""
    return _refs[(view, "serialization")]


_TIME: Schema = {"type": "string", "format": "date-time"}
_TEXT: Schema = {"type": "string"}
# Filters and ids: any text a column can hold, which leaves out NUL (PostgreSQL refuses it).
_FILTER: Schema = {"type": "string", "pattern": "^[^\\u0000]*$"}


def _enum(values: Sequence[str]) -> Schema:
    return {"type": "string", "enum": list(values)}


def _answer(description: str, view: Any = ErrorView) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref(view)}}}


_ERRORS: dict[str, Schema] = {
    "400": _answer("A parameter or cursor the API cannot use (`reason` says which)."),
    "401": _answer("No bearer token, or the wrong one."),
    "503": _answer("The database is unavailable."),
}


def _ok(view: Any, description: str) -> dict[str, Schema]:
    return {"200": _answer(description, view), **_ERRORS}


def _query(name: str, description: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "description": description, "schema": schema}


def _path(name: str, schema: Schema) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema}


_LIMIT = _query(
    "limit",
    "Items per page.",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
)
_CURSOR = _query("cursor", "The previous page's `nextCursor`.", _TEXT)
_JOB_ID = _path("id", {**_FILTER, "minLength": 1})
# Tasks and assets: a BIGINT id.
_NUMBER_ID = _path("id", {"type": "integer", "minimum": 1, "maximum": MAX_ID})
_NOT_FOUND = {"404": _answer("No such job or task.")}


def _list(operation: str, summary: str, item: Any, filters: list[Schema]) -> Schema:
    """A list endpoint: its filters, then ``limit`` and ``cursor``; a page of ``item``."""
    noun = operation.removeprefix("list").lower()
    return {
        "get": {
            "operationId": operation,
            "summary": summary,
            "parameters": [*filters, _LIMIT, _CURSOR],
            "responses": _ok(PageView[item], f"A page of {noun}."),
        }
    }


_PATHS: dict[str, Schema] = {
    "/api/events": {
        "get": {
            "operationId": "streamEvents",
            "summary": "Server-sent events of what changes, for as long as the client listens.",
            "description": (
                "Events: `ready` (the stream works), `job` (a job changed: its summary), "
                "`dead` (the dead tasks changed: `{items}`), `timeline` (the watched job's "
                "tasks or assets changed: `{jobId}`), `overflow` (too many jobs changed at "
                "once: reload the list), `down` (the database is unavailable; the stream goes "
                "on). The feed looks about once a second (FRAMEHOOK_EVENTS_POLL_SECONDS)."
            ),
            "parameters": [_query("job", "Also follow this job's timeline.", _FILTER)],
            "responses": {
                "200": {
                    "description": "An endless text/event-stream.",
                    "content": {"text/event-stream": {"schema": _TEXT}},
                },
                **_ERRORS,
                "503": _answer(
                    "The database is unavailable, or this server has as many streams open "
                    "as FRAMEHOOK_EVENTS_MAX_STREAMS allows (`too_many_streams`; come back "
                    "after `Retry-After` seconds)."
                ),
            },
        }
    },
    "/api/jobs": _list(
        "listJobs",
        "Jobs, newest first (by createdAt, then id).",
        JobView,
        [
            _query("status", "Only jobs in this status.", _ref(JobStatus)),
            _query("model", "Only jobs of this model.", _FILTER),
            _query("since", "Created at or after (ISO 8601).", _TIME),
            _query("until", "Created before (ISO 8601).", _TIME),
            _query(
                "jobId",
                "Only jobs whose id starts with this (a whole id, or its first characters; "
                "case-sensitive, surrounding spaces ignored).",
                _FILTER,
            ),
        ],
    ),
    "/api/jobs/{id}": {
        "get": {
            "operationId": "getJob",
            "summary": "A job with its deliveries, tasks (and their attempts) and assets.",
            "parameters": [_JOB_ID],
            "responses": {**_ok(JobTimelineView, "The job and its timeline."), **_NOT_FOUND},
        }
    },
    "/api/jobs/{id}/replay": {
        "post": {
            "operationId": "replayJob",
            "summary": "Queue the job's finished (succeeded or dead) tasks again.",
            "parameters": [
                _JOB_ID,
                _query("handler", "Only this handler's tasks.", _FILTER),
            ],
            "responses": {**_ok(ReplayedView, "How many tasks were queued again."), **_NOT_FOUND},
        }
    },
    "/api/assets/{id}/content": {
        "get": {
            "operationId": "getAssetContent",
            "summary": "A captured file, from FRAMEHOOK_STORAGE_URL.",
            "description": (
                "With the bearer token, or without it through an asset's `contentUrl` (signed "
                "with the token, valid for an hour). Served with the recorded content type, "
                "`nosniff`, and a sandboxing Content-Security-Policy; local files answer Range."
            ),
            "security": [{"bearer": []}, {}],
            "parameters": [
                _NUMBER_ID,
                _query(
                    "expires",
                    "A signed link's expiry (Unix seconds).",
                    {"type": "string", "pattern": f"^[0-9]{{1,{MAX_EXPIRES_DIGITS}}}$"},
                ),
                _query("signature", "A signed link's signature.", _TEXT),
            ],
            "responses": {
                "200": {
                    "description": "The file.",
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                },
                "206": {
                    "description": "The requested range of the file.",
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                },
                **_ERRORS,
                "403": _answer("A signed link that expired or was not signed by this server."),
                "404": _answer("No such asset, or its file is not in this server's storage."),
                "416": {"description": "A range outside the file (Starlette's plain answer)."},
            },
        }
    },
    "/api/deliveries": _list(
        "listDeliveries",
        "Verified deliveries, newest first (by id), without their bodies.",
        DeliveryView,
        [
            _query("outcome", "Only this outcome.", _ref(DeliveryOutcome)),
            _query("event", "Only this event (progress, completed, ...).", _FILTER),
            _query("jobId", "Only this job's.", _FILTER),
        ],
    ),
    "/api/deliveries/{id}": {
        "get": {
            "operationId": "getDelivery",
            "summary": "One delivery with its raw body (null once pruned).",
            "description": (
                "Where an `unrecognized` or `malformed` body can be read: JSON is answered as "
                "JSON (`bodyFormat: json`), anything else as text (`bodyFormat: text`)."
            ),
            "parameters": [_NUMBER_ID],
            "responses": {
                **_ok(DeliveryWithBodyView, "The delivery and its body."),
                "404": _answer("No such delivery."),
            },
        }
    },
    "/api/tasks": _list(
        "listTasks",
        "Handler tasks, newest first (by id): the dead ones unless asked.",
        TaskView,
        [
            _query(
                "status",
                f"Only this status (default {TaskStatus.DEAD}; `all` for every one).",
                {**_enum([*TASK_STATUSES, "all"]), "default": TaskStatus.DEAD.value},
            ),
            _query("handler", "Only this handler's.", _FILTER),
            _query("jobId", "Only this job's.", _FILTER),
        ],
    ),
    "/api/credits": {
        "get": {
            "operationId": "getCredits",
            "summary": "Credits charged by finished jobs, by model or by UTC day.",
            "description": (
                "A completed job is charged its `creditCost` once (duplicates, conflicts and "
                "polls never charge twice); a failed one is refunded and counts 0. Jobs count "
                "by when they ended (Apiframe's completedAt, else when framehook recorded it). "
                "Rows by model come highest first, rows by day oldest first."
            ),
            "parameters": [
                _query(
                    "by",
                    "Group by model or by UTC day.",
                    {**_enum(GROUPINGS), "default": "model"},
                ),
                _query(
                    "since",
                    "Jobs that ended at or after this: ISO 8601, or an age such as 7d, 24h, 30m.",
                    {"anyOf": [_TIME, {"type": "string", "pattern": AGE_PATTERN}]},
                ),
                _query("until", "Jobs that ended before this (ISO 8601).", _TIME),
            ],
            "responses": _ok(CreditsView, "The totals, and one row per model or day."),
        }
    },
    "/api/tasks/{id}/retry": {
        "post": {
            "operationId": "retryTask",
            "summary": "Queue one task again now, with a fresh retry budget.",
            "parameters": [_NUMBER_ID],
            "responses": {
                **_ok(RetriedView, "The task, queued again."),
                **_NOT_FOUND,
                "409": _answer("The task is running."),
            },
        }
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "framehook admin API",
        "version": "1",
        "description": (
            "Jobs, deliveries and handler tasks as framehook recorded them, re-queueing, and "
            "the credits jobs cost. "
            "Lists are `{items, nextCursor}`: pass `nextCursor` back as `cursor` for the next "
            "page; it is null on the last one."
        ),
    },
    "security": [{"bearer": []}],
    "paths": _PATHS,
    "components": {
        "schemas": _SCHEMAS,
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "FRAMEHOOK_ADMIN_TOKEN, or the token logged at start.",
            }
        },
    },
}
