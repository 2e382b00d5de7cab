"""Results and webhook bodies in the shapes Apiframe's reference allows but does not show.

Apiframe's official OpenAPI spec gives no schema for ``result`` and says of music generation
"the result is an array"; of its 106 model ids, any may answer in a shape nobody here has seen.
Its Node SDK's docs show webhook bodies as ``{jobId, type, …}`` and its tests as
``{jobId, status}``, with no ``event``. The fake sends these when its ``Behaviour`` asks
(``music_results``, ``unseen_result_probability``, ``event_field``), so a receiver can be
checked against them; the files behind the URLs are the same whatever the shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

__all__ = [
    "EVENT_FIELDS",
    "UNSEEN_SHAPES",
    "EventField",
    "UnseenShape",
    "named_by",
    "tracks_as_array",
    "unseen_result",
]

UnseenShape = Literal["urls", "url-objects", "flat", "nested"]
UNSEEN_SHAPES: tuple[UnseenShape, ...] = ("urls", "url-objects", "flat", "nested")
"""Result shapes no Apiframe document shows (see :func:`unseen_result`)."""

EventField = Literal["event", "type", "status"]
EVENT_FIELDS: tuple[EventField, ...] = ("event", "type", "status")
"""Where a webhook body may name its event (see :func:`named_by`)."""

_KINDS = {"png": "image", "jpeg": "image", "webp": "image", "mp4": "video", "mp3": "audio"}


def _kind(url: str) -> str:
    return _KINDS.get(url.rsplit(".", 1)[-1], "file")


def tracks_as_array(result: Mapping[str, Any]) -> list[Any]:
    """A music result as the official spec describes it: the array of tracks itself."""
    tracks: list[Any] = result["tracks"]
    return tracks


def unseen_result(shape: UnseenShape, urls: Sequence[str]) -> Any:
    """A result naming ``urls`` (in this order) in a shape no Apiframe document shows.

    - ``urls``: a bare array of URLs.
    - ``url-objects``: ``{"images": [{"url": …}, …]}`` (``media`` when not all are images).
    - ``flat``: the first file of each kind under ``imageUrl``, ``videoUrl`` or ``audioUrl``
      (``{"audioUrl": …, "imageUrl": …}`` for a track and its cover), the others under an
      unknown ``more`` key, each as ``{"<kind>Url": …}``.
    - ``nested``: ``{"output": {"data": [{"file": {"href": …}}, …]}}``, unknown keys all down.
    """
    if shape == "urls":
        return list(urls)
    if shape == "url-objects":
        key = "images" if all(_kind(u) == "image" for u in urls) else "media"
        return {key: [{"url": u} for u in urls]}
    if shape == "flat":
        flat: dict[str, Any] = {}
        more: list[dict[str, str]] = []
        for url in urls:
            key = f"{_kind(url)}Url"
            if key in flat:
                more.append({key: url})
            else:
                flat[key] = url
        return {**flat, "more": more} if more else flat
    return {"output": {"data": [{"file": {"href": u}} for u in urls]}}


def named_by(body: Mapping[str, Any], field: EventField) -> dict[str, Any]:
    """``body`` (a job webhook's, with ``event`` and ``status``) naming its event by ``field``:
    ``event`` as Apiframe documents it, ``type`` in its place (the SDK's docs), or no event at
    all, only the job's ``status`` (the SDK's tests)."""
    if field == "event":
        return dict(body)
    if field == "type":
        return {("type" if key == "event" else key): value for key, value in body.items()}
    return {key: value for key, value in body.items() if key != "event"}
