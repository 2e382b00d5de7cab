"""``GET /v2/jobs``: its query, checked as Apiframe's spec describes it, and its answer.

``status``, ``model``, ``limit`` (1 to 100, default 20) and ``cursor`` filter and page;
``search`` (a job's UUID) finds that job; ``scope`` is ``user`` (the default) or ``team``, which
only an admin may ask (403 otherwise); ``include_models=true`` adds ``models``, every model the
caller's jobs used. The fake has one caller, who owns its team, so both scopes list every job.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from receiver.dev.fakeapi.account import Account
from receiver.dev.fakeapi.jobs import STATUSES, Job, JobStore

__all__ = ["SCOPES", "job_list"]

SCOPES = ("user", "team")
_BOOLEANS = ("true", "false")


def _problems(query: Mapping[str, str]) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        problems["status"] = [f"Expected one of {', '.join(STATUSES)}"]
    limit = query.get("limit", "20")
    if not (limit.isdigit() and 1 <= int(limit) <= 100):
        problems["limit"] = ["Expected an integer from 1 to 100"]
    if query.get("scope", "user") not in SCOPES:
        problems["scope"] = [f"Expected one of {', '.join(SCOPES)}"]
    if query.get("include_models", "false") not in _BOOLEANS:
        problems["include_models"] = ["Expected true or false"]
    if search := query.get("search"):
        try:
            uuid.UUID(search)
        except ValueError:
            problems["search"] = ["Invalid uuid"]
    return problems


def job_list(
    jobs: JobStore,
    query: Mapping[str, str],
    account: Account,
    expired: Callable[[Job], bool],
) -> tuple[int, dict[str, Any]]:
    """The status and body ``GET /v2/jobs`` answers ``query`` with (a ``JobList`` on 200)."""
    if problems := _problems(query):
        return 400, {"error": "Validation failed", "details": problems}
    if query.get("scope") == "team" and not account.is_admin:
        return 403, {"error": "Only team admins may list the team's jobs"}
    try:
        page = jobs.page(
            status=query.get("status") or None,
            model=query.get("model") or None,
            limit=int(query.get("limit", "20")),
            cursor=query.get("cursor") or None,
            search=query.get("search") or None,
        )
    except ValueError:
        return 400, {"error": "Validation failed", "details": {"cursor": ["Invalid cursor"]}}
    body: dict[str, Any] = {
        "jobs": [job.resource(expired(job)) for job in page.jobs],
        "nextCursor": page.next_cursor,
        "hasMore": page.has_more,
    }
    if query.get("include_models") == "true":
        body["models"] = jobs.models()
    return 200, body
