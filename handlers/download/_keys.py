"""Storage keys: the key template rendered, with job ids (and model ids) as path segments.

A job id comes from the webhook body, so it can hold anything: ``x/``, ``a//b``, ``./x``,
``..``, unicode. Put into a key as it is, a store normalises those (``x/`` and ``x`` are one
directory), so two jobs would share a file. Each one is therefore encoded to exactly one path
segment, injectively: the RFC 3986 unreserved characters (ASCII letters, digits, ``-._~``)
stay as they are, every other byte of its UTF-8 becomes ``%XX`` (``%`` itself too), and a
segment that would be ``.`` or ``..`` has its dots encoded. Decoding (``%XX`` back to bytes)
gives the id back, so distinct ids never give one segment; and an ordinary id (a UUID,
``job-1``) is itself, so the keys of files stored before this encoding do not move.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from storage import InvalidKey

__all__ = ["key_segment", "render_key"]


def key_segment(value: str) -> str:
    """``value`` as one path segment that no other value gives (see the module docstring).

    Raises:
        InvalidKey: ``value`` is empty (it names no segment).
    """
    if not value:
        raise InvalidKey("an empty id names no storage key")
    # surrogatepass: a JSON string may hold a lone surrogate (\ud800), still one distinct id.
    encoded = quote(value.encode("utf-8", "surrogatepass"), safe="")
    if encoded in (".", ".."):
        return encoded.replace(".", "%2E")
    return encoded


def render_key(
    template: str,
    *,
    job_id: str,
    kind: str,
    n: int,
    position: int,
    ext: str,
    model: str | None,
    day: datetime,
) -> str:
    """The storage key for one file (the storage backend validates it); ``day`` gives
    ``{date}``; ``{job_id}`` and ``{model}`` are encoded by :func:`key_segment`.

    Raises:
        InvalidKey: the job id is empty.
    """
    return template.format(
        job_id=key_segment(job_id),
        kind=kind,
        n=n,
        position=position,
        ext=ext,
        model=key_segment(model or "unknown"),
        date=day.astimezone(UTC).date().isoformat(),
    )
