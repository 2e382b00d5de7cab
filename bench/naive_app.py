"""The naive baseline for ``bench/ack.py``: what a user would write instead of framehook.

Starlette and SQLModel, the same HMAC check (framehook's own ``Verifier``, so the signature
costs the same as framehook's and the bare endpoint's), then one session and one commit per
request: the delivery stored, the job's state upserted, a repeat refused by a unique key on
(job, event, progress). Durability as framehook's default SQLite (``receiver/db/engine.py``):
WAL with ``synchronous=FULL``, so an acknowledged delivery survives a power loss.

It does far less than framehook (no fingerprints or conflict detection, no state machine beyond
"the latest event wins", no tasks, no log line): a floor on what durable intake costs done the
obvious way, not a rival.

Serve it like framehook is served::

    APIFRAME_API_KEY=... NAIVE_DATABASE_URL=sqlite:///naive.db uvicorn bench.naive_app:app \\
        --host 127.0.0.1 --port 8002 --no-access-log --log-level warning --no-server-header \\
        --no-proxy-headers
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, create_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from receiver.apiframe.signatures import Verifier
from receiver.errors import SignatureRejected

__all__ = ["NaiveDelivery", "NaiveJob", "app", "create_app", "naive_engine"]

_ACCEPTED = b'{"ok":true}'
_DUPLICATE = b'{"ok":true,"duplicate":true}'
_REJECTED = b'{"ok":false,"reason":"signature_rejected"}'
_MALFORMED = b'{"ok":false,"reason":"malformed"}'


class NaiveDelivery(SQLModel, table=True):
    """One accepted webhook."""

    __tablename__ = "naive_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True)
    job_id: str = Field(index=True)
    event: str
    received_at: datetime
    body: bytes


class NaiveJob(SQLModel, table=True):
    """A job as its latest event left it."""

    __tablename__ = "naive_jobs"

    id: str = Field(primary_key=True)
    status: str
    progress: int = 0
    result: str | None = None
    updated_at: datetime


def naive_engine(url: str) -> Engine:
    """An engine with framehook's SQLite durability (WAL, ``synchronous=FULL``) and tables."""
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    # Only these tables: SQLModel's metadata is shared with framehook's models, if imported.
    metadata = SQLModel.metadata
    tables = [metadata.tables["naive_deliveries"], metadata.tables["naive_jobs"]]
    metadata.create_all(engine, tables=tables)
    return engine


def _dedupe_key(data: dict[str, Any]) -> str:
    # What a careful user would pick: a terminal event once per job, progress once per value.
    if data["event"] == "progress":
        return f"{data['jobId']}:progress:{data.get('progress')}"
    return f"{data['jobId']}:{data['event']}"


def create_app(api_key: str, database_url: str) -> Starlette:
    """The naive receiver for one API key, storing into ``database_url``."""
    verifier = Verifier([api_key])
    engine = naive_engine(database_url)

    async def webhook(request: Request) -> Response:
        body = await request.body()
        try:
            verifier.verify(request.headers.get("x-webhook-signature"), body)
        except SignatureRejected:
            return Response(_REJECTED, 401, media_type="application/json")
        try:
            data = json.loads(body)
            key, job_id, name = _dedupe_key(data), str(data["jobId"]), str(data["event"])
        except (ValueError, KeyError, TypeError):
            return Response(_MALFORMED, 400, media_type="application/json")
        now = datetime.now(UTC)
        # Blocking calls on the event loop, as most receivers written this way make them:
        # SQLite takes one writer at a time anyway, and a thread pool only adds lock waits.
        with Session(engine) as session:
            try:
                session.add(
                    NaiveDelivery(
                        dedupe_key=key, job_id=job_id, event=name, received_at=now, body=body
                    )
                )
                job = session.get(NaiveJob, job_id) or NaiveJob(
                    id=job_id, status="", updated_at=now
                )
                job.status = str(data.get("status") or name)
                job.progress = max(job.progress, int(data.get("progress") or 0))
                if "result" in data:
                    job.result = json.dumps(data["result"])
                job.updated_at = now
                session.add(job)
                session.commit()
            except IntegrityError:
                return Response(_DUPLICATE, 200, media_type="application/json")
        return Response(_ACCEPTED, 202, media_type="application/json")

    return Starlette(routes=[Route("/webhooks/apiframe", webhook, methods=["POST"])])


def _from_environment() -> Starlette:
    key = os.environ.get("APIFRAME_API_KEY", "").strip()
    url = os.environ.get("NAIVE_DATABASE_URL", "").strip()
    if not key or not url:
        raise RuntimeError("bench.naive_app needs APIFRAME_API_KEY and NAIVE_DATABASE_URL")
    return create_app(key, url)


# uvicorn imports ``bench.naive_app:app``; the settings come from the environment.
app = _from_environment()
