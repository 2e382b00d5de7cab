"""Finding the files in a job's ``result``, whatever its shape.

Apiframe documents ``result`` as a URL string (older jobs) or an object whose keys depend on
the modality (``images`` + ``gridUrl``, ``videoUrl``, ``videos``, ``tracks`` with audio and
cover), but its spec gives no schema, and its models return other shapes too (an array of
tracks or of URLs, ``{"imageUrl": …}``, ``{"images": [{"url": …}]}``, keys nobody has seen).
So every http(s) URL anywhere in the result is a file, numbered in two passes:

1. The documented shapes, in their fixed order (``images``, ``gridUrl``, ``videoUrl``,
   ``videos``, then per track its ``audioUrl`` and ``imageUrl``; or a string result), keep the
   kind they promise and their number within it: ``image-1``, ``grid-1``, ``video-1``,
   ``audio-1``, ``cover-1``, at the positions they always had.
2. Every other http(s) URL, at any depth, in document order, follows. Its kind is only known
   from its bytes (``file`` until then), so its number ``n`` is its position: it never depends
   on what another file turned out to be, or whether it could be fetched. Its ``{kind}-{n}``
   cannot meet a documented file's, whose number is at most the count of pass 1.

The same result always gives the same positions and keys: a retry, a replay or a poll lands on
the same names. A URL named twice is one file, at its first place (in pass 1 the repeat's place
stays counted, so the files after it keep the numbers they always had).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["AssetRef", "count_files", "find_assets", "public_url"]

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
_HTTP_URL = re.compile(r"https?://\S+", re.IGNORECASE)
# Strings that are URLs of a scheme the handler does not fetch: reported (by scheme only: a
# data: URI can be megabytes), not captured.
_OTHER_URL = re.compile(r"([a-z][a-z0-9+.-]*)://\S*|(data):\S*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class AssetRef:
    """A file named in a result, not fetched yet.

    ``position`` is 1-based over the whole result. ``kind`` is what the result promises
    (``image``, ``grid``, ``video``, ``audio``, ``cover``), or ``file`` when only the bytes can
    tell. ``n`` is 1-based within its kind for a promised kind, else the position.
    """

    position: int
    kind: str
    n: int
    url: str

    @property
    def url_extension(self) -> str | None:
        """The extension the URL's path ends in (``png``), lower-case, if any."""
        return _url_extension(self.url)


def _url_extension(url: str) -> str | None:
    try:
        name = urlsplit(url).path.rsplit("/", 1)[-1]
    except ValueError:  # not a URL that parses: it has no extension
        return None
    if "." not in name:
        return None
    extension = name.rsplit(".", 1)[-1].lower()
    return extension if extension.isalnum() and len(extension) <= 5 else None


def public_url(url: str) -> str:
    """``url`` without its query string and fragment (signed URLs carry credentials there)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an invalid URL ("https://[::1"): the error says so, not the URL
        return "<invalid URL>"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def find_assets(result: Any) -> tuple[list[AssetRef], list[str]]:
    """The files ``result`` names, by position, and the schemes of URLs in it that are not
    fetched (``data``, ``s3``; sorted, for the log).

    Pure and linear in the size of ``result``, at any depth (no recursion).
    """
    refs: list[AssetRef] = []
    seen: set[str] = set()
    slots = 0
    per_kind: dict[str, int] = {}

    def promised(kind: str, value: Any) -> None:
        nonlocal slots
        if not isinstance(value, str) or not value.strip():
            return
        url = value.strip()
        slots += 1
        per_kind[kind] = per_kind.get(kind, 0) + 1
        if url not in seen:
            seen.add(url)
            refs.append(AssetRef(slots, kind, per_kind[kind], url))

    if isinstance(result, str):
        promised(_EXTENSION_KINDS.get(_url_extension(result.strip()) or "", "file"), result)
    elif isinstance(result, dict):
        for url in _list(result.get("images")):
            promised("image", url)
        promised("grid", result.get("gridUrl"))
        promised("video", result.get("videoUrl"))
        for url in _list(result.get("videos")):
            promised("video", url)
        for track in _list(result.get("tracks")):
            if isinstance(track, dict):
                promised("audio", track.get("audioUrl"))
                promised("cover", track.get("imageUrl"))
    others: set[str] = set()
    for text in _strings(result):
        url = text.strip()
        if url in seen:
            continue
        if _HTTP_URL.fullmatch(url):
            seen.add(url)
            slots += 1
            refs.append(AssetRef(slots, "file", slots, url))
        elif match := _OTHER_URL.fullmatch(url):
            others.add((match.group(1) or match.group(2)).lower())
    return refs, sorted(others)


def count_files(result: Any) -> int:
    """How many files ``result`` names (each distinct URL once): what the download handler
    stores for a job once it is captured whole."""
    return len(find_assets(result)[0])


def _strings(value: Any) -> Iterator[str]:
    """Every string in ``value``, in document order, however deep (an explicit stack)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(item.values()))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
