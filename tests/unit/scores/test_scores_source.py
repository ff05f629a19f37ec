"""Importing score files: Base64 detection whatever ``dataEncoding`` says, sniffing, checking
MusicXML, MXL and MIDI, titles, parts, and the limits."""

from __future__ import annotations

import base64
import io
import zipfile
from datetime import UTC, datetime

import mido
import pytest

from mediatasks import errors
from mediatasks.scores import midi, musicxml, score, source
from tests import scoregen


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- decoding and sniffing ---------------------------------------------------------------------
@pytest.mark.parametrize("encoding", [None, "base64"])
def test_base64_is_detected_whatever_data_encoding_says(encoding: str | None) -> None:
    data = scoregen.midi_bytes()
    assert source.decode(b64(data), encoding) == data
    assert source.sniff(source.decode(b64(data), encoding)) is score.SourceFormat.MIDI


def test_base64_with_line_breaks_urlsafe_alphabet_or_no_padding_is_decoded() -> None:
    data = scoregen.midi_bytes() + b"\xfb\xff"  # bytes that need '+' and '/'
    wrapped = "\n".join(b64(data)[i : i + 76] for i in range(0, len(b64(data)), 76))
    assert source.decode(wrapped) == data
    urlsafe = base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert source.decode(urlsafe) == data


def test_text_that_starts_with_a_tag_is_musicxml_even_when_base64_is_claimed() -> None:
    text = "\ufeff  \n" + scoregen.musicxml()
    raw = source.decode(text, "base64")
    assert source.sniff(raw) is score.SourceFormat.MUSICXML


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"MThd\x00\x00\x00\x06", score.SourceFormat.MIDI),
        (b"PK\x03\x04rest", score.SourceFormat.MXL),
        (b"<?xml", score.SourceFormat.MUSICXML),
        (b"\xef\xbb\xbf<score-partwise/>", score.SourceFormat.MUSICXML),
        (b"\xff\xfe<\x00s\x00", score.SourceFormat.MUSICXML),
        (b"\n\t <score-partwise/>", score.SourceFormat.MUSICXML),
    ],
)
def test_sniff_by_magic(raw: bytes, expected: score.SourceFormat) -> None:
    assert source.sniff(raw) is expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("", "empty"),
        ("   \n ", "empty"),
        ("not base64 at all!", "neither MusicXML text nor valid Base64"),
        (b64(b"\x00\x01\x02junk\xff" * 10), "not in a supported format"),
        (b64(b"%PDF-1.7 ..."), "optical music recognition"),
    ],
)
def test_junk_is_refused_with_a_reason(data: str, message: str) -> None:
    with pytest.raises(errors.InvalidInput, match=message):
        source.read(data)


def test_unknown_data_encoding_is_refused() -> None:
    with pytest.raises(errors.InvalidInput, match="dataEncoding"):
        source.decode("PHg+", "hex")


def test_a_file_over_the_limit_is_refused_before_parsing() -> None:
    huge = scoregen.huge_musicxml(source.MAX_SOURCE_BYTES + 1)
    with pytest.raises(errors.InvalidInput, match="the limit is 8 MiB"):
        source.read(huge)
    with pytest.raises(errors.InvalidInput, match="the limit is 8 MiB"):
        source.read(b64(b"MThd" + b"\x00" * source.MAX_SOURCE_BYTES))


# -- MusicXML ----------------------------------------------------------------------------------
def test_musicxml_import_lists_parts_title_and_normalizes() -> None:
    text = scoregen.musicxml(title="Duet", parts=(("P1", "Piano", 1), ("P2", "Flute", 74)))
    imported = source.read(text)
    assert imported.source_format is score.SourceFormat.MUSICXML
    assert imported.title == "Duet"
    assert [(p.id, p.name, p.program) for p in imported.parts] == [
        ("P1", "Piano", 0),
        ("P2", "Flute", 73),
    ]
    assert [score.instrument_id(p) for p in imported.parts] == [
        "keyboards.piano",
        "woodwinds.pipes",
    ]
    assert imported.source == text.encode()
    assert b"DOCTYPE" not in imported.playable
    assert imported.playable.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_title_comes_from_the_request_then_the_file_then_the_filename() -> None:
    text = scoregen.musicxml(title="In the file")
    assert source.read(text, title="Asked").title == "Asked"
    assert source.read(text, filename="x.musicxml").title == "In the file"
    untitled = text.replace("<work><work-title>In the file</work-title></work>", "")
    assert source.read(untitled, filename="C:\\scores\\My Song.musicxml").title == "My Song"
    assert source.read(untitled).title == source.DEFAULT_TITLE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<score-partwise><part-list>", "not well-formed XML"),
        ("<html><body>hello</body></html>", "root element is <html>"),
        ('<score-timewise version="4.0"/>', "score-timewise"),
        ('<?xml version="1.0"?><score-partwise version="4.0"></score-partwise>', "no parts"),
        (
            '<score-partwise><part-list><score-part id="P1"><part-name>A</part-name>'
            '</score-part></part-list><part id="P2"/></score-partwise>',
            "does not declare",
        ),
        (
            '<!DOCTYPE x [<!ENTITY a "aaaa">]><score-partwise>&a;</score-partwise>',
            "entities",
        ),
    ],
)
def test_bad_musicxml_is_refused(text: str, message: str) -> None:
    with pytest.raises(errors.InvalidInput, match=message):
        source.read(text)


_LAUGHS = (
    '<?xml version="1.0" encoding="{encoding}"?>\n'
    '<!DOCTYPE score-partwise [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY % p "x">]>\n'
    '<score-partwise><part-list><score-part id="P1"><part-name>&b;</part-name></score-part>'
    "</part-list></score-partwise>"
)


@pytest.mark.parametrize(
    ("encoding", "codec"),
    [
        ("UTF-8", "utf-8"),
        ("UTF-8", "utf-8-sig"),
        ("UTF-16", "utf-16"),
        ("UTF-16LE", "utf-16-le"),
        ("UTF-16BE", "utf-16-be"),
    ],
)
def test_entity_declarations_are_refused_in_every_encoding(encoding: str, codec: str) -> None:
    raw = _LAUGHS.format(encoding=encoding).encode(codec)
    assert b"<!ENTITY" not in raw or codec.startswith("utf-8")
    with pytest.raises(errors.InvalidInput, match="entities"):
        source.read(base64.b64encode(raw).decode())


def test_utf32_musicxml_is_refused() -> None:
    raw = _LAUGHS.format(encoding="UTF-32").encode("utf-32")
    with pytest.raises(errors.InvalidInput):
        source.read(base64.b64encode(raw).decode())


def test_musicxml_with_rests_only_is_refused() -> None:
    with pytest.raises(errors.InvalidInput, match="no notes"):
        source.read(scoregen.musicxml(notes=False))


def test_select_parts_keeps_declaration_and_music_of_the_chosen_parts() -> None:
    text = scoregen.musicxml(parts=(("P1", "Piano", 1), ("P2", "Flute", 74), ("P3", "Oboe", 69)))
    root = musicxml.parse(text.encode())
    kept = musicxml.select_parts(root, ["P3", "P1"])
    assert [p.get("id") for p in kept.findall("part")] == ["P1", "P3"]
    assert [p.get("id") for p in kept.findall("part-list/score-part")] == ["P1", "P3"]
    assert len(root.findall("part")) == 3  # the original is untouched
    assert [p.id for p in musicxml.summarize(kept).parts] == ["P1", "P3"]


def test_revision_select_parts_refuses_unknown_ids_and_keeps_score_order() -> None:
    imported = source.read(scoregen.musicxml(parts=(("P1", "A", 1), ("P2", "B", 1))))
    revision = score.Revision(
        id=score.new_id(),
        created_at=datetime.now(UTC),
        source_format=imported.source_format,
        parts=imported.parts,
        source_size_bytes=1,
    )
    assert [p.id for p in revision.select_parts(["P2", "P1"])] == ["P1", "P2"]
    assert revision.select_parts([]) == revision.parts
    assert revision.select_parts(None) == revision.parts
    with pytest.raises(errors.InvalidInput, match="unknown part 'P9'"):
        revision.select_parts(["P9"])


# -- MXL ---------------------------------------------------------------------------------------
def test_mxl_round_trip_and_import() -> None:
    text = scoregen.musicxml(title="Zipped").encode()
    packed = musicxml.pack_mxl(text)
    assert musicxml.unpack_mxl(packed) == text
    imported = source.read(b64(packed))
    assert imported.source_format is score.SourceFormat.MXL
    assert imported.title == "Zipped"
    assert imported.source == packed


def test_mxl_without_container_uses_the_musicxml_member() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("song.musicxml", scoregen.musicxml(title="Bare"))
    assert source.read(b64(buffer.getvalue())).title == "Bare"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"readme.txt": "hello"}, "holds no MusicXML"),
        ({"song.xml": "not xml <"}, "not well-formed"),
    ],
)
def test_bad_mxl_is_refused(members: dict[str, str], message: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(errors.InvalidInput, match=message):
        source.read(b64(buffer.getvalue()))


def test_truncated_zip_is_refused() -> None:
    packed = musicxml.pack_mxl(scoregen.musicxml().encode())
    with pytest.raises(errors.InvalidInput, match="mxl"):
        source.read(b64(packed[:40]))


def test_zip_bomb_is_refused_by_its_declared_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(musicxml, "MAX_XML_BYTES", 1000)
    packed = musicxml.pack_mxl(scoregen.musicxml(measures=50).encode())
    with pytest.raises(errors.InvalidInput, match="the limit is"):
        source.read(b64(packed))


# -- MIDI --------------------------------------------------------------------------------------
def test_midi_import_lists_tracks_as_parts() -> None:
    data = scoregen.midi_bytes(tracks=(("Piano", 0), ("Strings", 48)))
    imported = source.read(b64(data))
    assert imported.source_format is score.SourceFormat.MIDI
    assert imported.title == "Generated"
    assert [(p.id, p.name, p.program, p.track) for p in imported.parts] == [
        ("P1", "Piano", 0, 1),
        ("P2", "Strings", 48, 2),
    ]
    assert imported.playable == data


def test_midi_without_notes_and_broken_midi_are_refused() -> None:
    with pytest.raises(errors.InvalidInput, match="MIDI file has no notes"):
        source.read(b64(scoregen.midi_without_notes()))
    with pytest.raises(errors.InvalidInput, match="MIDI file cannot be read"):
        source.read(b64(scoregen.midi_bytes()[:30]))
    with pytest.raises(errors.InvalidInput, match="MIDI file"):
        source.read(b64(b"MThd" + b"\xff" * 40))


def test_midi_duration_follows_tempo_and_selection() -> None:
    parsed = midi.parse(scoregen.midi_bytes(notes=6, beat_s=0.75))
    assert midi.music_duration_s(parsed) == pytest.approx(4.5)
    silent = midi.select_tracks(parsed, set())
    assert midi.music_duration_s(silent) == 0.0
    assert len(silent.tracks) == len(parsed.tracks)  # meta events (the tempo) are kept
    assert midi.music_duration_s(midi.select_tracks(parsed, {1})) == pytest.approx(4.5)


def test_separate_channels_gives_each_track_its_own_channel() -> None:
    original = mido.MidiFile(type=1)
    for program in (0, 73, 40):
        track = mido.MidiTrack()
        track.append(mido.Message("program_change", channel=0, program=program))
        track.append(mido.Message("note_on", channel=0, note=60, velocity=90))
        track.append(mido.Message("note_off", channel=0, note=60, time=10))
        original.tracks.append(track)
    drums = mido.MidiTrack([mido.Message("note_on", channel=9, note=36, velocity=90)])
    original.tracks.append(drums)
    fixed = midi.separate_channels(original)
    channels = [{m.channel for m in t if not m.is_meta} for t in fixed.tracks]
    assert channels == [{0}, {1}, {2}, {9}]
    programs = [[m.program for m in t if m.type == "program_change"] for t in fixed.tracks]
    assert programs == [[0], [73], [40], []]
