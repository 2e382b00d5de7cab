"""Checking that a file is what it claims: an HTML error page served as 200 is not a PNG.

The first bytes of the body must be one of the accepted media formats (``_formats``), of the
family the result promised (an image for ``images``, a video for ``videoUrl``, any media for a
URL whose kind only its bytes can tell). The stored file's content type and extension come
from what was found, never from the URL or the server's header. Anything else is refused,
saying what it looks like: an HTML, XML, JSON or text error page, SVG (it can carry script),
or whatever ``puremagic`` names.
"""

from __future__ import annotations

import puremagic

from handlers.download._formats import Media, identify

__all__ = ["HEAD_BYTES", "ContentMismatch", "Media", "check_content"]

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
_HTML = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<meta", b"<script")


class ContentMismatch(Exception):
    """The body is not the kind of file the result promised (or is empty)."""


def check_content(head: bytes, kind: str) -> Media:
    """The format of a body starting with ``head``, which must suit ``kind``.

    Raises:
        ContentMismatch: empty, not accepted media, or of another family (saying what it was).
    """
    if not head:
        raise ContentMismatch("the body is empty (0 bytes)")
    media = identify(head)
    families = FAMILIES.get(kind, FAMILIES["file"])
    if media is None or media.family not in families:
        expected = " or ".join(f"{f}/*" for f in families)
        got = media.content_type if media is not None else describe(head)
        raise ContentMismatch(f"expected {expected} for a {kind}, got {got}")
    return media


def describe(head: bytes) -> str:
    """What a body that is not accepted media looks like, for the refusal's reason."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if text.startswith(b"<"):
        if b"<svg" in text:
            return "image/svg+xml (SVG is refused: it can carry script)"
        if text.startswith(_HTML) or b"<html" in text:
            return "text/html"
        return "application/xml"
    if text.startswith((b"{", b"[")):
        return "application/json"
    try:
        found = str(puremagic.from_string(head, mime=True))
    except puremagic.PureError:
        found = ""
    if found.split("/", 1)[0] in FAMILIES["file"]:
        # Its signature, but not the structure ``_formats`` checks (or a format not accepted).
        return f"{found} by its first bytes, not a well-formed file of an accepted format"
    if found:
        return found
    if all(byte >= 0x20 or byte in b"\t\n\r" for byte in head[:512]):
        return "text/plain"
    return "unrecognised bytes"
