"""Which bytes the download handler accepts: every format the media models emit, told from a
real file's first bytes with its content type and extension; and what it refuses."""

from __future__ import annotations

import pytest

from handlers.download._content import ContentMismatch, check_content
from tests.support.media import NOT_MEDIA, media_bytes

FORMATS = [
    ("png", "image/png", "png"),
    ("jpeg", "image/jpeg", "jpg"),
    ("webp", "image/webp", "webp"),
    ("gif", "image/gif", "gif"),
    ("avif", "image/avif", "avif"),
    ("heic", "image/heic", "heic"),
    ("heic-mif1", "image/heic", "heic"),
    ("heif", "image/heif", "heif"),
    ("mp4", "video/mp4", "mp4"),
    ("mov", "video/quicktime", "mov"),
    ("mov-classic", "video/quicktime", "mov"),
    ("webm", "video/webm", "webm"),
    ("mkv", "video/x-matroska", "mkv"),
    ("mp3", "audio/mpeg", "mp3"),
    ("mp3-big-tag", "audio/mpeg", "mp3"),
    ("mp3-untagged", "audio/mpeg", "mp3"),
    ("m4a", "audio/mp4", "m4a"),
    ("aac", "audio/aac", "aac"),
    ("wav", "audio/wav", "wav"),
    ("flac", "audio/flac", "flac"),
    ("flac-id3", "audio/flac", "flac"),
    ("ogg", "audio/ogg", "ogg"),
    ("opus", "audio/ogg", "opus"),
]


@pytest.mark.parametrize(("name", "content_type", "extension"), FORMATS)
def test_each_format_the_models_emit_is_accepted_with_its_type_and_extension(
    name: str, content_type: str, extension: str
) -> None:
    """A real file's first 4 KiB give its own content type and extension, for the kind its
    family promises and for a file whose kind only its bytes tell."""
    head = media_bytes(name, 10_000)[:4096]
    family = content_type.split("/")[0]
    for kind in (family, "file"):
        media = check_content(head, kind)
        assert (media.content_type, media.extension, media.family) == (
            content_type,
            extension,
            family,
        )


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("html", "text/html"),
        ("json", "application/json"),
        ("xml", "application/xml"),
        ("text", "text/plain"),
        ("svg", "SVG"),
        ("svg-xml", "SVG"),
    ],
)
def test_error_pages_and_svg_are_refused_whatever_was_promised(name: str, words: str) -> None:
    """HTML, JSON, XML or text error pages, and SVG (it can carry script), are no media: refused
    for a promised image and for a file of unknown kind, saying what they look like."""
    for kind in ("image", "file"):
        with pytest.raises(ContentMismatch, match=words):
            check_content(NOT_MEDIA[name], kind)


@pytest.mark.parametrize(
    ("head", "words"),
    [
        (b"\xff\xfb\x90\x64" + bytes(413) + b"<html>", "audio/mpeg by its first bytes"),
        (b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01crx isom", "for a file"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
        (b"\x1a\x45\xdf\xa3\x84\x42\x82\x81x", "for a file"),
    ],
    ids=["mp3-frame-then-html", "canon-raw", "pdf", "ebml-unknown-doctype"],
)
def test_lookalikes_are_judged_by_their_structure(head: bytes, words: str) -> None:
    """An MPEG frame header whose next frame is not one, an ISO file of a brand that is no
    media (Canon raw, though it names isom too), a PDF, or an EBML file of an unknown type are
    not media."""
    with pytest.raises(ContentMismatch, match=words):
        check_content(head, "file")


@pytest.mark.parametrize(
    ("name", "kind"), [("mp4", "image"), ("m4a", "video"), ("avif", "video"), ("png", "audio")]
)
def test_media_of_another_family_than_promised_is_refused(name: str, kind: str) -> None:
    """An M4A is audio, not the video its ISO container might suggest; an AVIF is an image."""
    with pytest.raises(ContentMismatch, match=f"for a {kind}"):
        check_content(media_bytes(name, 4096), kind)
