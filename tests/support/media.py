"""Bytes that start like real media files (what the content check reads), any size.

Each header is what a real encoder writes at the start of such a file (a PNG's signature and
chunks, an MP4's ``ftyp`` box as ffmpeg writes it, an Ogg page with its checksum, two MPEG
audio frames, ...), hand-written because no encoder is installed where the tests run. After
the header comes deterministic noise, so every file has its own checksum.
"""

from __future__ import annotations

import random
import struct
import zlib

__all__ = ["HEADERS", "NOT_MEDIA", "media_bytes"]


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4))


def _box(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", 8 + len(data)) + kind + data


def _ftyp(major: bytes, minor: int, *compatible: bytes) -> bytes:
    """An ISO media file's first box, as ffmpeg, libavif or an iPhone writes it."""
    return _box(b"ftyp", major + struct.pack(">I", minor) + b"".join(compatible))


def _ebml(doctype: bytes) -> bytes:
    """A Matroska/WebM file's EBML header (as ffmpeg writes it), then its Segment's start."""

    def element(ident: str, value: bytes) -> bytes:
        return bytes.fromhex(ident) + bytes([0x80 | len(value)]) + value

    version = b"\x04" if doctype == b"matroska" else b"\x02"
    body = b"".join(
        [
            element("4286", b"\x01"),  # EBMLVersion
            element("42f7", b"\x01"),  # EBMLReadVersion
            element("42f2", b"\x04"),  # EBMLMaxIDLength
            element("42f3", b"\x08"),  # EBMLMaxSizeLength
            element("4282", doctype),  # DocType
            element("4287", version),  # DocTypeVersion
            element("4285", b"\x02"),  # DocTypeReadVersion
        ]
    )
    return (
        bytes.fromhex("1a45dfa3")
        + bytes([0x80 | len(body)])
        + body
        + bytes.fromhex("1853806701ffffffffffffff")
    )


def _ogg_crc(page: bytes) -> int:
    # CRC-32, polynomial 0x04C11DB7, not reflected, initial value 0 (RFC 3533).
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = (crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _ogg_page(packet: bytes) -> bytes:
    """The first page of an Ogg stream (beginning of stream), holding one packet."""
    header = b"OggS\x00\x02" + bytes(8) + struct.pack("<II", 0x1EE7, 0) + bytes(4)
    page = header + bytes([1, len(packet)]) + packet
    return page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]


def _mp3_frames(count: int = 2) -> bytes:
    """MPEG-1 layer III frames, 128 kbit/s, 44.1 kHz: 417 bytes each (a LAME-like silence)."""
    frame = b"\xff\xfb\x90\x64" + bytes(413)
    return frame * count


def _id3(extra: int = 0) -> bytes:
    """An ID3v2.4 tag with the encoder's name (ffmpeg's TSSE), padded by ``extra`` bytes."""
    text = b"\x03Lavf60.16.100\x00"
    frame = b"TSSE" + _synchsafe(len(text)) + b"\x00\x00" + text
    body = frame + bytes(extra)
    return b"ID3\x04\x00\x00" + _synchsafe(len(body)) + body


def _synchsafe(value: int) -> bytes:
    return bytes([(value >> 21) & 0x7F, (value >> 14) & 0x7F, (value >> 7) & 0x7F, value & 0x7F])


_WAV_FMT = struct.pack("<HHIIHH", 1, 2, 44100, 44100 * 4, 4, 16)
# STREAMINFO: 4096-sample blocks, 44.1 kHz, 2 channels, 16 bits, 441,000 samples, its MD5.
_STREAMINFO = (
    struct.pack(">HH", 4096, 4096)
    + bytes(6)
    + (44100 << 44 | 1 << 41 | 15 << 36 | 441_000).to_bytes(8, "big")
    + bytes.fromhex("d41d8cd98f00b204e9800998ecf8427e")
)
_FLAC = b"fLaC" + b"\x80" + len(_STREAMINFO).to_bytes(3, "big") + _STREAMINFO
_VORBIS_ID = b"\x01vorbis" + struct.pack("<IBIiii", 0, 2, 44100, 0, 128000, 0) + b"\xb8\x01"
_OPUS_HEAD = b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 312, 48000, 0, 0)

HEADERS = {
    "png": _png(),
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
    # A 1x1 lossless WebP, whole.
    "webp": b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11"
    b"\x11\x88\x88\xfe\x07\x00",
    # A 1x1 GIF, whole.
    "gif": b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00"
    b"\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
    "avif": _ftyp(b"avif", 0, b"avif", b"mif1", b"miaf", b"MA1B") + _box(b"meta", bytes(4)),
    "heic": _ftyp(b"heic", 0, b"mif1", b"heic") + _box(b"meta", bytes(4)),
    # Generic HEIF whose major brand is mif1; the compatible heic makes it HEIC (Samsung).
    "heif": _ftyp(b"mif1", 0, b"mif1", b"miaf") + _box(b"meta", bytes(4)),
    "heic-mif1": _ftyp(b"mif1", 0, b"mif1", b"heic") + _box(b"meta", bytes(4)),
    "mp4": _ftyp(b"isom", 0x200, b"isom", b"iso2", b"avc1", b"mp41") + _box(b"free", b""),
    "mov": _ftyp(b"qt  ", 0x200, b"qt  ") + _box(b"wide", b"") + b"\x00\x00\x00\x00mdat",
    # A QuickTime movie from before ftyp: it starts with its moov atom.
    "mov-classic": b"\x00\x00\x01\x00moov\x00\x00\x00\x6cmvhd",
    "m4a": _ftyp(b"M4A ", 0x200, b"M4A ", b"isom", b"iso2") + _box(b"free", b""),
    "webm": _ebml(b"webm"),
    "mkv": _ebml(b"matroska"),
    "mp3": _id3() + _mp3_frames(),
    # An ID3 tag holding cover art bigger than what the check reads.
    "mp3-big-tag": _id3(extra=20_000) + _mp3_frames(),
    "mp3-untagged": _mp3_frames(),
    "aac": bytes.fromhex("fff15080021ffc") + bytes(9) + bytes.fromhex("fff15080021ffc"),
    "wav": b"RIFF\x24\x00\x01\x00WAVEfmt "
    + struct.pack("<I", 16)
    + _WAV_FMT
    + b"data\x00\x00\x01\x00",
    "flac": _FLAC,
    "flac-id3": _id3() + _FLAC,
    "ogg": _ogg_page(_VORBIS_ID),
    "opus": _ogg_page(_OPUS_HEAD),
}
HEADERS["jpg"] = HEADERS["jpeg"]

NOT_MEDIA = {
    "html": b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head></html>",
    "json": b'{"error": {"code": "NoSuchKey", "message": "The key does not exist"}}',
    "xml": b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code></Error>',
    "text": b"upstream connect error or disconnect/reset before headers",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "svg-xml": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="1"/>',
}


def media_bytes(ext: str, size: int, seed: int = 0) -> bytes:
    """``size`` bytes (at least the header) of a file of type ``ext`` (a key of ``HEADERS``
    or ``NOT_MEDIA``): its real beginning, then deterministic noise."""
    header = HEADERS[ext] if ext in HEADERS else NOT_MEDIA[ext]
    rest = max(0, size - len(header))
    return header + random.Random(f"{ext}-{size}-{seed}").randbytes(rest)
