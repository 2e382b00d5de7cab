"""Finding the files in a job's ``result``, whatever its shape.

Apiframe's ``result`` is either a URL string (older jobs) or an object whose keys depend on the
modality (``../reference``: images + gridUrl, videoUrl, videos, tracks with audio and cover).
Files are numbered in one fixed order, so the same result always gives the same positions and
keys: a retry or a replay lands on the same names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["AssetRef", "find_assets", "public_url"]

# Keys whose URLs are captured; anything else that holds a URL is logged, not fetched.
KNOWN_KEYS = frozenset({"images", "gridUrl", "videoUrl", "videos", "tracks"})
_EXTENSION_KINDS = {
    "png": "image",
    "jpg": "image",
    "jpeg": "image",
    "webp": "image",
    "gif": "image",
    "mp4": "video",
    "mov": "video",
    "webm": "video",
    "mp3": "audio",
    "wav": "audio",
    "m4a": "audio",
    "ogg": "audio",
    "flac": "audio",
}


@dataclass(frozen=True, slots=True)
class AssetRef:
    """A file named in a result, not fetched yet.

    ``position`` is 1-based over the whole result; ``n`` is 1-based within its kind.
    """

    position: int
    kind: str
    n: int
    url: str

    @property
    def url_extension(self) -> str | None:
        """The extension the URL's path ends in (``png``), lower-case, if any."""
        path = urlsplit(self.url).path
        name = path.rsplit("/", 1)[-1]
        if "." not in name:
            return None
        extension = name.rsplit(".", 1)[-1].lower()
        return extension if extension.isalnum() and len(extension) <= 5 else None


def public_url(url: str) -> str:
    """``url`` without its query string and fragment (signed URLs carry credentials there)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _urls(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _urls(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _urls(item)


def _looks_like_url(text: str) -> bool:
    return text.startswith(("https://", "http://"))


def find_assets(result: Any) -> tuple[list[AssetRef], list[str]]:
    """The files to capture from ``result``, in position order, and the keys of the result
    that hold URLs this handler does not capture (to be logged)."""
    refs: list[AssetRef] = []
    per_kind: dict[str, int] = {}

    def add(kind: str, url: Any) -> None:
        if not isinstance(url, str) or not url.strip():
            return
        per_kind[kind] = per_kind.get(kind, 0) + 1
        refs.append(AssetRef(len(refs) + 1, kind, per_kind[kind], url.strip()))

    if isinstance(result, str):
        ref = AssetRef(0, "file", 0, result)
        add(_EXTENSION_KINDS.get(ref.url_extension or "", "file"), result)
        return refs, []
    if not isinstance(result, dict):
        return refs, []
    for url in _list(result.get("images")):
        add("image", url)
    add("grid", result.get("gridUrl"))
    add("video", result.get("videoUrl"))
    for url in _list(result.get("videos")):
        add("video", url)
    for track in _list(result.get("tracks")):
        if isinstance(track, dict):
            add("audio", track.get("audioUrl"))
            add("cover", track.get("imageUrl"))
    ignored = sorted(
        key
        for key, value in result.items()
        if key not in KNOWN_KEYS and any(_looks_like_url(u) for u in _urls(value))
    )
    return refs, ignored


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
