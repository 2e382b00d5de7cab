"""A client for Apiframe's v2 job API: create jobs, read one, walk the list; read a LoRA.

Used by reconciliation (``receiver.reconcile.reconciler``), ``framehook generate`` and the demo. It
retries what the API says to retry: 429 after its ``Retry-After``, 503/5xx and connection
errors with exponential backoff and jitter (``receiver.retry``). A 404 on a job is an answer
(``None``), not an error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from handlers import retry_after
from receiver.apiframe.duplicates import duplicate_key
from receiver.errors import FramehookError
from receiver.retry import RetryPolicy

__all__ = ["DEFAULT_API_URL", "ApiframeClient", "ApiframeError", "JobPage"]

DEFAULT_API_URL = "https://api.apiframe.ai"
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
# A POST is retried only when the job was surely not created: refused before processing.
_POST_RETRY_STATUS = frozenset({429, 503})
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)


class ApiframeError(FramehookError):
    """The API refused a request or stayed unavailable.

    Attributes:
        status: the HTTP status (``None`` when no answer came).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of ``GET /v2/jobs``, newest first."""

    jobs: list[dict[str, Any]]
    next_cursor: str | None
    has_more: bool


@dataclass
class ApiframeClient:
    """Apiframe's job API with one API key.

    Args:
        api_key: sent as ``X-API-Key``.
        base_url: ``https://api.apiframe.ai``, or a fake's address.
        attempts: tries per request before ``ApiframeError``.
        policy: the backoff between tries (a 429's ``Retry-After`` wins).
        transport: for tests (an ASGI app's transport, a mock).
    """

    api_key: str
    base_url: str = DEFAULT_API_URL
    attempts: int = 5
    policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(0.5, 30.0, 100))
    transport: httpx.AsyncBaseTransport | None = None
    polls: dict[str, int] = field(default_factory=dict)
    """Requests by outcome (``ok``, ``not_found``, ``rate_limited``, ``unavailable``, ...)."""

    def __post_init__(self) -> None:
        self._http = httpx.AsyncClient(
            base_url=self.base_url.rstrip("/"),
            headers={"X-API-Key": self.api_key, "User-Agent": "framehook"},
            timeout=httpx.Timeout(15.0, connect=5.0),
            transport=self.transport,
            trust_env=False,
        )

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def create(self, route: str, payload: dict[str, Any]) -> str:
        """``POST /v2/<route>`` (``images/generate``, ...); return the new job's id."""
        answer = await self._request("POST", f"/v2/{route.strip('/')}", json=payload)
        if answer is None:
            raise ApiframeError(f"POST /v2/{route}: 404 (no such route)", 404)
        job_id = answer.get("jobId")
        if not isinstance(job_id, str):
            raise ApiframeError(f"POST /v2/{route}: no jobId in the answer")
        return job_id

    async def job(self, job_id: str) -> dict[str, Any] | None:
        """``GET /v2/jobs/:id``: the job resource, or ``None`` if Apiframe does not know it."""
        return await self._request("GET", f"/v2/jobs/{job_id}")

    async def lora(self, lora_id: str) -> dict[str, Any] | None:
        """``GET /v2/loras/:id``: the LoRA resource (``id``, ``status``, ``name``,
        ``triggerWord``, ``error``, ``createdAt``, ``completedAt``, ...), or ``None`` if
        Apiframe does not know it.

        Raises:
            ApiframeError: refused (400: not a LoRA id Apiframe accepts) or unavailable.
        """
        # The id came from a webhook body: never let it change the path.
        return await self._request("GET", f"/v2/loras/{quote(lora_id, safe='')}")

    async def jobs(
        self,
        *,
        cursor: str | None = None,
        limit: int = 100,
        status: str | None = None,
        model: str | None = None,
    ) -> JobPage:
        """One page of ``GET /v2/jobs`` (newest first)."""
        params: dict[str, Any] = {"limit": limit}
        for name, value in (("cursor", cursor), ("status", status), ("model", model)):
            if value is not None:
                params[name] = value
        answer = await self._request("GET", "/v2/jobs", params=params) or {}
        jobs = answer.get("jobs")
        return JobPage(
            jobs=[j for j in jobs if isinstance(j, dict)] if isinstance(jobs, list) else [],
            next_cursor=answer.get("nextCursor")
            if isinstance(answer.get("nextCursor"), str)
            else None,
            has_more=bool(answer.get("hasMore")),
        )

    def _count(self, outcome: str) -> None:
        self.polls[outcome] = self.polls.get(outcome, 0) + 1

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        last = "no attempt made"
        status: int | None = None
        for attempt in range(1, self.attempts + 1):
            wait: float | None = None
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                self._count("unreachable")
                last, status = f"{type(exc).__name__}: {exc}", None
                if method == "POST" and not isinstance(exc, _NOT_SENT):
                    # It may have reached Apiframe: trying again could create a second job.
                    raise ApiframeError(f"{method} {path}: {last}") from exc
            else:
                status = response.status_code
                if status == 404 and method == "GET":
                    self._count("not_found")
                    return None
                if status < 300:
                    self._count("ok")
                    return _json(response)
                last = f"HTTP {status}: {_error_text(response)}"
                retryable = _POST_RETRY_STATUS if method == "POST" else _RETRY_STATUS
                if status not in retryable:
                    self._count("refused")
                    raise ApiframeError(f"{method} {path}: {last}", status)
                self._count("rate_limited" if status == 429 else "unavailable")
                wait = retry_after(response.headers.get("retry-after"))
            if attempt == self.attempts:
                break
            if wait is None:
                wait = self.policy.backoff(attempt)
            await asyncio.sleep(min(wait, 300.0))
        raise ApiframeError(
            f"{method} {path}: gave up after {self.attempts} tries ({last})", status
        )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise ApiframeError(f"the API answered non-JSON ({response.status_code})") from None
    # Reconciliation writes what a poll says into the job: an answer that says two things (two
    # "status") is not read, as a webhook saying them is not (``receiver.apiframe.events``).
    duplicate = duplicate_key(response.content, data)
    if duplicate is not None:
        raise ApiframeError(
            f"the API answered JSON naming the key {duplicate} ({response.status_code})"
        )
    return data if isinstance(data, dict) else {}


def _error_text(response: httpx.Response) -> str:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200]
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return response.text[:200]
