"""The admin API described in OpenAPI 3.1 (served at ``/api/openapi.json``).

Written by hand, next to the routes it describes; the tests run schemathesis against it, so a
route or field that drifts from this description fails them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from receiver.admin.paging import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT
from receiver.admin.queries import JOB_STATUSES, OUTCOMES, TASK_STATUSES
from receiver.credits import GROUPINGS
from receiver.durations import AGE_PATTERN

__all__ = ["OPENAPI"]

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _enum(values: Sequence[str]) -> Schema:
    return {"type": "string", "enum": list(values)}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


_TIME: Schema = {"type": "string", "format": "date-time"}
_TEXT: Schema = {"type": "string"}
# Filters and ids: any text a column can hold, which leaves out NUL (PostgreSQL refuses it).
_FILTER: Schema = {"type": "string", "pattern": "^[^\\u0000]*$"}
_INT: Schema = {"type": "integer"}
_ANY: Schema = {}

_JOB = {
    "id": _TEXT,
    "status": _enum(JOB_STATUSES),
    "progress": {"type": "integer", "minimum": 0, "maximum": 100},
    "model": _nullable(_TEXT),
    "result": _ANY,
    "error": _nullable(_TEXT),
    "creditCost": _nullable({"type": "number"}),
    "createdAt": _TIME,
    "completedAt": _nullable(_TIME),
    "updatedAt": _TIME,
}
_DELIVERY = {
    "id": _INT,
    "jobId": _nullable(_TEXT),
    "loraId": {**_nullable(_TEXT), "description": "The LoRA of a LoRA training event."},
    "event": _nullable(_TEXT),
    "headerEvent": _nullable(_TEXT),
    "eventMismatch": {"type": "boolean"},
    "outcome": _enum(OUTCOMES),
    "source": _TEXT,
    "requestId": _TEXT,
    "keyIndex": _nullable(_INT),
    "derivation": _nullable(_TEXT),
    "receivedAt": _TIME,
}
_BODY = {
    "body": {"description": "The raw body: its JSON when JSON, else text; null once pruned."},
    "bodyFormat": _nullable(_enum(["json", "text"])),
}
_TASK = {
    "id": _INT,
    "jobId": _nullable(_TEXT),
    "deliveryId": _INT,
    "handler": _TEXT,
    "event": _TEXT,
    "status": _enum(TASK_STATUSES),
    "attempts": {"type": "integer", "minimum": 0, "description": "Attempts so far."},
    "lastError": _nullable(_TEXT),
    "runAt": _TIME,
    "finishedAt": _nullable(_TIME),
    "createdAt": _TIME,
    "updatedAt": _TIME,
}
_ATTEMPT = {
    "attempt": _INT,
    "worker": _TEXT,
    "startedAt": _TIME,
    "finishedAt": _TIME,
    "outcome": _TEXT,
    "error": _nullable(_TEXT),
}
_ASSET = {
    "id": _INT,
    "handler": _TEXT,
    "kind": _TEXT,
    "position": _INT,
    "sourceUrl": _TEXT,
    "storageUri": _TEXT,
    "key": _TEXT,
    "size": _INT,
    "contentType": _nullable(_TEXT),
    "sha256": _TEXT,
    "storedAt": _TIME,
}


_COUNT: Schema = {"type": "integer", "minimum": 0}
_TOTALS = {
    "completed": {**_COUNT, "description": "Jobs completed (charged)."},
    "failed": {**_COUNT, "description": "Jobs failed (refunded: no credits)."},
    "credits": {"type": "number", "description": "Credits charged by the completed jobs."},
}


def _page(item: str) -> Schema:
    return _object(
        {"items": {"type": "array", "items": _ref(item)}, "nextCursor": _nullable(_TEXT)}
    )


_SCHEMAS: dict[str, Schema] = {
    "Job": _object(_JOB),
    "JobTimeline": _object(
        {
            **_JOB,
            "assets": {"type": "array", "items": _ref("Asset")},
            "deliveries": {"type": "array", "items": _ref("DeliveryWithBody")},
            "tasks": {"type": "array", "items": _ref("TaskWithHistory")},
        }
    ),
    "Delivery": _object(_DELIVERY),
    "DeliveryWithBody": _object({**_DELIVERY, **_BODY}),
    "Task": _object(_TASK),
    "TaskWithHistory": _object({**_TASK, "history": {"type": "array", "items": _ref("Attempt")}}),
    "Attempt": _object(_ATTEMPT),
    "Asset": _object(
        {
            **_ASSET,
            "contentUrl": {
                "type": "string",
                "description": "The file, through this server, for an hour without the token.",
            },
        }
    ),
    "JobPage": _page("Job"),
    "DeliveryPage": _page("Delivery"),
    "TaskPage": _page("Task"),
    "CreditRow": _object(
        {
            "key": {
                **_nullable(_TEXT),
                "description": "The model (null: never named), or the UTC day (YYYY-MM-DD).",
            },
            **_TOTALS,
        }
    ),
    "Credits": _object(
        {
            "by": _enum(GROUPINGS),
            "since": _nullable(_TIME),
            "items": {"type": "array", "items": _ref("CreditRow")},
            "total": _object(_TOTALS),
        }
    ),
    "Retried": _object({"ok": {"const": True}, "requeued": _INT, "task": _ref("Task")}),
    "Replayed": _object(
        {
            "ok": {"const": True},
            "jobId": _TEXT,
            "handler": _nullable(_TEXT),
            "requeued": _INT,
            "tasks": {"type": "array", "items": _ref("Task")},
        }
    ),
    "Error": _object(
        {
            "ok": {"const": False},
            "reason": {"type": "string", "description": "Machine-readable, stable."},
            "error": _TEXT,
            "detail": _TEXT,
        },
        required=["reason"],
    ),
}


def _answer(description: str, schema: str = "Error") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


_ERRORS: dict[str, Schema] = {
    "400": _answer("A parameter or cursor the API cannot use (`reason` says which)."),
    "401": _answer("No bearer token, or the wrong one."),
    "503": _answer("The database is unavailable."),
}


def _ok(schema: str, description: str) -> dict[str, Schema]:
    return {"200": _answer(description, schema), **_ERRORS}


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
_TASK_ID = _path("id", {"type": "integer", "minimum": 1, "maximum": MAX_ID})
_NOT_FOUND = {"404": _answer("No such job or task.")}

_ASSET_ID = _path("id", {"type": "integer", "minimum": 1, "maximum": MAX_ID})

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
            },
        }
    },
    "/api/jobs": {
        "get": {
            "operationId": "listJobs",
            "summary": "Jobs, newest first (by createdAt, then id).",
            "parameters": [
                _query("status", "Only jobs in this status.", _enum(JOB_STATUSES)),
                _query("model", "Only jobs of this model.", _FILTER),
                _query("since", "Created at or after (ISO 8601).", _TIME),
                _query("until", "Created before (ISO 8601).", _TIME),
                _LIMIT,
                _CURSOR,
            ],
            "responses": _ok("JobPage", "A page of jobs."),
        }
    },
    "/api/jobs/{id}": {
        "get": {
            "operationId": "getJob",
            "summary": "A job with its deliveries, tasks (and their attempts) and assets.",
            "parameters": [_JOB_ID],
            "responses": {**_ok("JobTimeline", "The job and its timeline."), **_NOT_FOUND},
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
            "responses": {**_ok("Replayed", "How many tasks were queued again."), **_NOT_FOUND},
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
                _ASSET_ID,
                _query("expires", "A signed link's expiry (Unix seconds).", _TEXT),
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
    "/api/deliveries": {
        "get": {
            "operationId": "listDeliveries",
            "summary": "Verified deliveries, newest first (by id), without their bodies.",
            "parameters": [
                _query("outcome", "Only this outcome.", _enum(OUTCOMES)),
                _query("event", "Only this event (progress, completed, ...).", _FILTER),
                _query("jobId", "Only this job's.", _FILTER),
                _LIMIT,
                _CURSOR,
            ],
            "responses": _ok("DeliveryPage", "A page of deliveries."),
        }
    },
    "/api/tasks": {
        "get": {
            "operationId": "listTasks",
            "summary": "Handler tasks, newest first (by id): the dead ones unless asked.",
            "parameters": [
                _query(
                    "status",
                    "Only this status (default dead; `all` for every one).",
                    {**_enum([*TASK_STATUSES, "all"]), "default": "dead"},
                ),
                _query("handler", "Only this handler's.", _FILTER),
                _query("jobId", "Only this job's.", _FILTER),
                _LIMIT,
                _CURSOR,
            ],
            "responses": _ok("TaskPage", "A page of tasks."),
        }
    },
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
            "responses": _ok("Credits", "The totals, and one row per model or day."),
        }
    },
    "/api/tasks/{id}/retry": {
        "post": {
            "operationId": "retryTask",
            "summary": "Queue one task again now, with a fresh retry budget.",
            "parameters": [_TASK_ID],
            "responses": {
                **_ok("Retried", "The task, queued again."),
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
