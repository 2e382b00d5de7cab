"""The fake's uploads: ``POST /v2/uploads`` files, sniffed, kept in memory and served for a while.

Like Apiframe: one multipart ``file`` part, its type told by its first bytes (the declared
content type is ignored), at most 25 MB for an image or audio file and 50 MB for a video, and
gone from the CDN an hour after the upload (Apiframe reaps them after one to two hours).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from receiver.dev.fakeapi.bodies import iso_time
from receiver.dev.fakeapi.loras import multipart_parts

__all__ = ["LIFETIME", "MAX_BYTES", "Upload", "UploadStore", "sniff", "uploaded_file"]

MB = 1024 * 1024
MAX_BYTES = {"image": 25 * MB, "audio": 25 * MB, "video": 50 * MB}
LIFETIME = timedelta(hours=1)

# (kind, content type, extension) by leading bytes; RIFF and ISO media files are told apart
# by what follows, in sniff().
_PREFIXES: tuple[tuple[bytes, tuple[str, str, str]], ...] = (
    (b"\x89PNG\r\n\x1a\n", ("image", "image/png", "png")),
    (b"\xff\xd8\xff", ("image", "image/jpeg", "jpg")),
    (b"GIF87a", ("image", "image/gif", "gif")),
    (b"GIF89a", ("image", "image/gif", "gif")),
    (b"\x1a\x45\xdf\xa3", ("video", "video/webm", "webm")),
    (b"OggS", ("audio", "audio/ogg", "ogg")),
    (b"ID3", ("audio", "audio/mpeg", "mp3")),
    (b"\xff\xfb", ("audio", "audio/mpeg", "mp3")),
    (b"\xff\xf3", ("audio", "audio/mpeg", "mp3")),
    (b"\xff\xf2", ("audio", "audio/mpeg", "mp3")),
)


def sniff(data: bytes) -> tuple[str, str, str] | None:
    """``(kind, content type, extension)`` of a file Apiframe accepts, from its first bytes."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image", "image/webp", "webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio", "audio/wav", "wav"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand == b"qt  ":
            return "video", "video/quicktime", "mov"
        if brand.startswith(b"M4A"):
            return "audio", "audio/mp4", "m4a"
        return "video", "video/mp4", "mp4"
    for prefix, found in _PREFIXES:
        if data.startswith(prefix):
            return found
    return None


def uploaded_file(body: bytes, content_type: str) -> bytes | None:
    """The content of a multipart/form-data body's ``file`` part, or ``None`` if it has none."""
    if not content_type.startswith("multipart/form-data"):
        return None
    for part in multipart_parts(body, content_type) or ():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else None
    return None


@dataclass(frozen=True, slots=True)
class Upload:
    """One uploaded file and where the fake's CDN serves it."""

    id: str
    kind: str
    content_type: str
    extension: str
    data: bytes
    url: str
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def expires_at(self) -> datetime:
        """When the CDN stops serving it."""
        return self.created_at + LIFETIME

    def resource(self) -> dict[str, Any]:
        """The ``Upload`` answer of ``POST /v2/uploads``."""
        return {
            "id": self.id,
            "url": self.url,
            "kind": self.kind,
            "contentType": self.content_type,
            "byteSize": len(self.data),
            "expiresAt": iso_time(self.expires_at),
        }


class UploadStore:
    """The uploads, by id, until they expire."""

    __slots__ = ("_by_id",)

    def __init__(self) -> None:
        self._by_id: dict[str, Upload] = {}

    def add(self, data: bytes, sniffed: tuple[str, str, str], base_url: str) -> Upload:
        """Keep ``data`` (of the sniffed type) and say where ``base_url``'s CDN serves it."""
        upload_id = str(uuid.uuid4())
        kind, content_type, extension = sniffed
        url = f"{base_url.rstrip('/')}/cdn/uploads/{upload_id}.{extension}"
        upload = Upload(upload_id, kind, content_type, extension, data, url)
        self._by_id[upload_id] = upload
        return upload

    def served(self, name: str, now: datetime | None = None) -> Upload | None:
        """The upload the CDN file ``name`` (``<id>.<ext>``) is, if it has not expired."""
        upload_id, _, extension = name.rpartition(".")
        upload = self._by_id.get(upload_id)
        if upload is None or upload.extension != extension:
            return None
        if (now or datetime.now(UTC)) >= upload.expires_at:
            return None
        return upload
