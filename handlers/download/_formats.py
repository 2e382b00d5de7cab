"""The media formats the download handler accepts, told from their first bytes.

What the generation models emit: PNG, JPEG, WebP, GIF, AVIF, HEIC/HEIF, MP4, MOV, WebM, MP3
(with or without an ID3 tag), M4A, AAC, WAV, FLAC and Ogg (Vorbis, Opus). Each is matched on
its container's own structure rather than a library's guess: ISO media files (MP4, MOV, M4A,
AVIF, HEIC) are told apart by their ``ftyp`` brands, RIFF files by their form type, Ogg by its
first packet's codec, MPEG audio by two consecutive valid frame headers. Anything else, SVG
included (it can carry script), is not accepted media.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Media", "identify"]


@dataclass(frozen=True, slots=True)
class Media:
    """An accepted format: its content type and the extension files of it are stored with."""

    content_type: str
    extension: str

    @property
    def family(self) -> str:
        """``image``, ``video`` or ``audio``."""
        return self.content_type.split("/", 1)[0]


PNG = Media("image/png", "png")
JPEG = Media("image/jpeg", "jpg")
GIF = Media("image/gif", "gif")
WEBP = Media("image/webp", "webp")
AVIF = Media("image/avif", "avif")
HEIC = Media("image/heic", "heic")
HEIF = Media("image/heif", "heif")
MP4 = Media("video/mp4", "mp4")
MOV = Media("video/quicktime", "mov")
WEBM = Media("video/webm", "webm")
MKV = Media("video/x-matroska", "mkv")
OGV = Media("video/ogg", "ogv")
MP3 = Media("audio/mpeg", "mp3")
M4A = Media("audio/mp4", "m4a")
AAC = Media("audio/aac", "aac")
WAV = Media("audio/wav", "wav")
FLAC = Media("audio/flac", "flac")
OGG = Media("audio/ogg", "ogg")
OPUS = Media("audio/ogg", "opus")  # RFC 7845: Ogg Opus is audio/ogg, stored as .opus

# ISO base media file brands (ftyp), the major one first, then the compatible ones.
_IMAGE_BRANDS = {
    **dict.fromkeys([b"avif", b"avis"], AVIF),
    **dict.fromkeys([b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"], HEIC),
}
# Generic image-file brands: the specific brand among the compatible ones decides.
_STRUCTURAL_BRANDS = frozenset({b"mif1", b"msf1", b"miaf"})
_AV_BRANDS = {
    b"qt  ": MOV,
    **dict.fromkeys([b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "], M4A),
    **dict.fromkeys(
        [
            *(b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9"),
            *(b"mp41", b"mp42", b"mp71", b"avc1", b"dash", b"f4v ", b"mmp4", b"MSNV"),
            *(b"NDAS", b"M4V ", b"M4VH", b"M4VP", b"3gp4", b"3gp5", b"3gp6", b"3g2a"),
            *(b"cmfc", b"cmf2"),
        ],
        MP4,
    ),
}
# A QuickTime movie from before ftyp existed starts straight with one of these atoms.
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide"})
_OGG_CODECS = (
    (b"OpusHead", OPUS),
    (b"\x01vorbis", OGG),
    (b"\x7fFLAC", Media("audio/ogg", "oga")),
    (b"Speex   ", Media("audio/ogg", "spx")),
    (b"\x80theora", OGV),
)
# MPEG audio layer III: kbit/s by bitrate index, Hz by sample-rate index, per MPEG version
# (the header's two version bits: 0 = 2.5, 2 = 2, 3 = 1).
_MP3_KBPS = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_KBPS[0] = _MP3_KBPS[2]
_MP3_HZ = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def identify(head: bytes) -> Media | None:
    """The accepted format a body starting with ``head`` is, or ``None``."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head.startswith(b"fLaC"):
        return FLAC
    if head.startswith(b"OggS"):
        return _ogg(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _ebml(head)
    if head.startswith(b"ID3"):
        return _after_id3(head)
    found = _riff(head) or _iso_media(head)
    if found is not None:
        return found
    return _audio_frames(head, 0)


def _riff(head: bytes) -> Media | None:
    form = head[8:12]
    if head.startswith(b"RIFF") and form == b"WEBP":
        return WEBP
    # RF64 and BW64: the WAV layouts for files over 4 GiB.
    if head.startswith((b"RIFF", b"RF64", b"BW64")) and form == b"WAVE":
        return WAV
    return None


def _iso_media(head: bytes) -> Media | None:
    if head[4:8] in _QUICKTIME_ATOMS and int.from_bytes(head[:4], "big") >= 8:
        return MOV
    if head[4:8] != b"ftyp" or len(head) < 12:
        return None
    end = min(int.from_bytes(head[:4], "big"), len(head))
    brands = [head[8:12]] + [head[i : i + 4] for i in range(16, end - 3, 4)]
    major = brands[0]
    if major in _IMAGE_BRANDS:
        return _IMAGE_BRANDS[major]
    if major in _STRUCTURAL_BRANDS:
        return next((_IMAGE_BRANDS[b] for b in brands if b in _IMAGE_BRANDS), HEIF)
    if major in _AV_BRANDS:
        return _AV_BRANDS[major]
    # An unknown major brand: a specific compatible one says what players can read it as;
    # the generic isom only says it is an ISO file (a Canon raw photo names it too).
    return next((_AV_BRANDS.get(b) or _IMAGE_BRANDS[b] for b in brands[1:] if _specific(b)), None)


def _specific(brand: bytes) -> bool:
    if brand == b"isom" or (brand.startswith(b"iso") and brand[3:].isdigit()):
        return False
    return brand in _AV_BRANDS or brand in _IMAGE_BRANDS


def _ebml(head: bytes) -> Media | None:
    # The EBML header's DocType element (id 0x4282) names the format; its size is one byte
    # (0x80 | length) in every file a muxer writes.
    at = head.find(b"\x42\x82", 4, 64)
    if at < 0 or len(head) <= at + 2 or not head[at + 2] & 0x80:
        return None
    doctype = head[at + 3 : at + 3 + (head[at + 2] & 0x7F)]
    return {b"webm": WEBM, b"matroska": MKV}.get(doctype)


def _ogg(head: bytes) -> Media | None:
    # The first page's header is 27 bytes and a segment table; the first packet follows.
    if len(head) < 27:
        return None
    packet = head[27 + head[26] :]
    return next((media for magic, media in _OGG_CODECS if packet.startswith(magic)), OGG)


def _after_id3(head: bytes) -> Media | None:
    """An ID3v2 tag is followed by MPEG audio, usually, or FLAC or AAC; a tag too big for
    ``head`` (cover art) hides what follows, and then it is MP3, the format ID3 was made for."""
    size = head[6:10]
    if len(size) < 4 or head[3] not in (2, 3, 4) or any(byte & 0x80 for byte in size):
        return None
    # Four 7-bit bytes ("synchsafe": no byte of the size can look like a frame sync).
    end = 10 + (size[0] << 21 | size[1] << 14 | size[2] << 7 | size[3])
    if head[5] & 0x10:  # a footer repeats the header
        end += 10
    if len(head) < end + 4:
        return MP3
    if head.startswith(b"fLaC", end):
        return FLAC
    return _audio_frames(head, end) or MP3


def _audio_frames(head: bytes, at: int) -> Media | None:
    """AAC in ADTS frames, or MPEG layer III frames (an MP3 without a tag) starting at
    ``at``: a frame header with no reserved values, and for MP3 the next frame's header
    where the first frame's length says (when ``head`` reaches it)."""
    header = head[at : at + 4]
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    if header[1] & 0xF6 == 0xF0:  # 12 sync bits, layer 0: ADTS
        return AAC if (header[2] >> 2) & 0xF < 13 else None
    length = _mp3_frame_length(header)
    if length is None:
        return None
    following = head[at + length : at + length + 4]
    if len(following) == 4 and _mp3_frame_length(following) is None:
        return None
    return MP3


def _mp3_frame_length(header: bytes) -> int | None:
    if header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer = (header[1] >> 3) & 3, (header[1] >> 1) & 3
    bitrate, rate = header[2] >> 4, (header[2] >> 2) & 3
    if version == 1 or layer != 1 or bitrate in (0, 15) or rate == 3:
        return None
    kbps, hz = _MP3_KBPS[version][bitrate], _MP3_HZ[version][rate]
    per_frame = 144 if version == 3 else 72  # MPEG-2 and 2.5 frames hold half the samples
    return per_frame * kbps * 1000 // hz + ((header[2] >> 1) & 1)
