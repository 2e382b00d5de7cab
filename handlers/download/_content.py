"""Checking that a file is what it claims: an HTML error page served as 200 is not a PNG.

The first bytes of the body are matched against the known signatures (``puremagic``), and the
type found must belong to the family the result promised (an image for ``images``, a video for
``videoUrl``, ...). The stored file's extension and content type come from what was found, not
from the URL or the server's header.
"""

from __future__ import annotations

import puremagic

__all__ = ["HEAD_BYTES", "ContentMismatch", "check_content", "extension_for"]

HEAD_BYTES = 4096
"""How much of the body is read before the type is decided."""

FAMILIES = {
    "image": ("image",),
    "grid": ("image",),
    "cover": ("image",),
    "video": ("video",),
    "audio": ("audio",),
    "file": ("image", "video", "audio"),
}
_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/avif": "avif",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
}


class ContentMismatch(Exception):
    """The body is not the kind of file the result promised (or is empty)."""


def check_content(head: bytes, kind: str) -> str:
    """The MIME type of a body starting with ``head``, which must suit ``kind``.

    Raises:
        ContentMismatch: empty, unrecognisable, or of another family (with what it was).
    """
    if not head:
        raise ContentMismatch("the body is empty (0 bytes)")
    try:
        found = str(puremagic.from_string(head, mime=True))
    except puremagic.PureError:
        found = ""
    families = FAMILIES.get(kind, FAMILIES["file"])
    if found.split("/", 1)[0] not in families:
        expected = " or ".join(f"{f}/*" for f in families)
        got = found or "unrecognised bytes"
        raise ContentMismatch(f"expected {expected} for a {kind}, got {got}")
    return found


def extension_for(content_type: str, fallback: str | None) -> str:
    """The file extension for ``content_type`` (``png``), else ``fallback``, else ``bin``."""
    return _EXTENSIONS.get(content_type) or fallback or "bin"
