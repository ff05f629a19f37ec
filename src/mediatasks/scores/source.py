"""What a client sends to ``POST /v2/scores``: decode it, sniff its format, check it.

Flat's ``data`` is MusicXML text, or Base64 for binary formats.  The official Python client
(2.0.4, with pydantic < 2.11) silently drops ``dataEncoding``, so the encoding is *detected*:
data that starts with ``<`` (after a byte order mark and blanks) is text; anything else must be
valid Base64, and the decoded bytes are sniffed by their magic numbers (``MThd`` for MIDI,
``PK\\x03\\x04`` for an MXL zip, ``<`` for MusicXML).

Limits (refused with ``errors.InvalidInput`` at creation, so a client gets a 400 at once):

* the imported file may be at most :data:`MAX_SOURCE_BYTES` (8 MiB) once decoded;
* the MusicXML inside an MXL at most ``musicxml.MAX_XML_BYTES`` (32 MiB);
* the music must have at least one part and one note.

Limits that need the music to be engraved (how long it plays) are checked when it is rendered.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from pathlib import PurePosixPath
from typing import Final

from mediatasks import errors
from mediatasks.scores import midi, musicxml, score

__all__ = [
    "DEFAULT_TITLE",
    "MAX_SOURCE_BYTES",
    "MAX_TITLE_CHARS",
    "Imported",
    "decode",
    "read",
    "sniff",
]

#: The largest score file accepted, after Base64 decoding.
MAX_SOURCE_BYTES: Final = 8 * 1024**2
#: Titles are cut to this length.
MAX_TITLE_CHARS: Final = 256
#: The title of a score that names none, when no file name is given either (Flat's wording).
DEFAULT_TITLE: Final = "New Music Score"

_BOMS: Final = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_TEXT_BLANKS: Final = "\ufeff \t\r\n"
_ACCEPTED: Final = (
    "send MusicXML (as text or Base64), compressed MusicXML (.mxl) or MIDI (as Base64)"
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Imported:
    """A checked score file, ready to be stored as a revision."""

    source_format: score.SourceFormat
    #: The file as the client sent it (decoded from Base64).
    source: bytes
    #: What rendering reads: normalized MusicXML, or the MIDI file itself.
    playable: bytes
    parts: tuple[score.Part, ...]
    #: The title asked for, else the file's own, else the file name, else the default.
    title: str
    composer: str | None


def decode(data: str, data_encoding: str | None = None) -> bytes:
    """The file bytes that ``data`` carries, whatever ``data_encoding`` claims."""
    if data_encoding not in (None, "base64"):
        raise errors.InvalidInput(f"unsupported dataEncoding {data_encoding!r}: use 'base64'")
    text = data.lstrip(_TEXT_BLANKS)
    if not text.strip():
        raise errors.InvalidInput("the score data is empty")
    if text.startswith("<"):
        raw = text.encode("utf-8")
    else:
        raw = _base64(text)
    if len(raw) > MAX_SOURCE_BYTES:
        raise errors.InvalidInput(
            f"the score file is {len(raw) / 1024**2:.1f} MiB; "
            f"the limit is {MAX_SOURCE_BYTES // 1024**2} MiB"
        )
    return raw


def sniff(raw: bytes) -> score.SourceFormat:
    """The format of a score file, from its first bytes."""
    if raw.startswith(b"MThd"):
        return score.SourceFormat.MIDI
    if raw.startswith(b"PK\x03\x04"):
        return score.SourceFormat.MXL
    head = raw
    for bom in _BOMS:
        head = head.removeprefix(bom)
    if head[:2] in (b"<\x00", b"\x00<") or head.lstrip(b" \t\r\n").startswith(b"<"):
        return score.SourceFormat.MUSICXML
    if raw.startswith(b"%PDF"):
        raise errors.InvalidInput(
            "PDF scores need optical music recognition, which this server does not do; " + _ACCEPTED
        )
    raise errors.InvalidInput(f"the score data is not in a supported format: {_ACCEPTED}")


def read(
    data: str,
    *,
    data_encoding: str | None = None,
    filename: str | None = None,
    title: str | None = None,
) -> Imported:
    """Decode, sniff and check a score file; raise ``errors.InvalidInput`` with the reason.

    This parses the whole file: call it in a thread.
    """
    raw = decode(data, data_encoding)
    source_format = sniff(raw)
    if source_format is score.SourceFormat.MIDI:
        parsed = midi.parse(raw)
        parts = midi.parts(parsed)
        if not parts:
            raise errors.InvalidInput("the MIDI file has no notes")
        imported_title = _midi_title(parsed)
        playable = raw
        composer = None
    else:
        xml = musicxml.unpack_mxl(raw) if source_format is score.SourceFormat.MXL else raw
        root = musicxml.parse(xml)
        summary = musicxml.summarize(root)
        if summary.note_count == 0:
            raise errors.InvalidInput("the score has no notes")
        parts = summary.parts
        imported_title = summary.title
        playable = musicxml.serialize(root)
        composer = summary.composer
    chosen = (title or "").strip() or imported_title or _title_from(filename) or DEFAULT_TITLE
    return Imported(
        source_format=source_format,
        source=raw,
        playable=playable,
        parts=parts,
        title=chosen[:MAX_TITLE_CHARS],
        composer=composer,
    )


def _base64(text: str) -> bytes:
    compact = "".join(text.split())
    if any(char in compact for char in "-_"):
        compact = compact.replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise errors.InvalidInput(
            f"the score data is neither MusicXML text nor valid Base64: {_ACCEPTED}"
        ) from exc


def _midi_title(parsed: midi.MidiFile) -> str | None:
    """A MIDI file's title: the name of its first track when that track plays no notes."""
    if not parsed.tracks:
        return None
    first = parsed.tracks[0]
    if any(message.type == "note_on" for message in first):
        return None
    for message in first:
        if message.type == "track_name":
            name = str(message.name).strip()
            return name or None
    return None


def _title_from(filename: str | None) -> str | None:
    if not filename:
        return None
    stem = PurePosixPath(filename.replace("\\", "/")).stem.strip()
    return stem or None
