"""Small scores made on the spot for tests: MusicXML strings and MIDI files (with mido).

Nothing is downloaded.  Every helper says how long its music plays, so tests can compare an
audio file's duration with the score's own timing.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import mido

__all__ = [
    "STEPS",
    "huge_musicxml",
    "midi_bytes",
    "midi_without_notes",
    "musicxml",
]

#: The pitches the generated melodies walk through.
STEPS = ("C", "D", "E", "F", "G", "A", "B")


def _measure(number: int, notes: str, attributes: str = "") -> str:
    return f'<measure number="{number}">{attributes}{notes}</measure>'


def musicxml(
    *,
    title: str = "Test Score",
    measures: int = 2,
    tempo_qpm: int = 120,
    parts: Sequence[tuple[str, str, int]] = (("P1", "Piano", 1),),
    notes: bool = True,
) -> str:
    """A 4/4 score: each part plays ``measures`` bars of quarter notes at ``tempo_qpm``.

    ``parts`` are ``(id, name, MIDI program counted from 1)``.  The music lasts
    ``measures * 4 * 60 / tempo_qpm`` seconds.
    """
    part_list = "".join(
        f'<score-part id="{part_id}"><part-name>{name}</part-name>'
        f'<score-instrument id="{part_id}-I1"><instrument-name>{name}</instrument-name>'
        f'</score-instrument><midi-instrument id="{part_id}-I1">'
        f"<midi-program>{program}</midi-program></midi-instrument></score-part>"
        for part_id, name, program in parts
    )
    bodies = []
    for index, (part_id, _, _) in enumerate(parts):
        bars = []
        for number in range(1, measures + 1):
            attributes = ""
            if number == 1:
                attributes = (
                    "<attributes><divisions>1</divisions><key><fifths>0</fifths></key>"
                    "<time><beats>4</beats><beat-type>4</beat-type></time>"
                    "<clef><sign>G</sign><line>2</line></clef></attributes>"
                    '<direction placement="above"><direction-type><metronome>'
                    f"<beat-unit>quarter</beat-unit><per-minute>{tempo_qpm}</per-minute>"
                    f'</metronome></direction-type><sound tempo="{tempo_qpm}"/></direction>'
                )
            if notes:
                content = "".join(
                    f"<note><pitch><step>{STEPS[(number + beat + index) % 7]}</step>"
                    f"<octave>{4 + index % 2}</octave></pitch><duration>1</duration>"
                    "<type>quarter</type></note>"
                    for beat in range(4)
                )
            else:
                content = "<note><rest/><duration>4</duration><type>whole</type></note>"
            bars.append(_measure(number, content, attributes))
        bodies.append(f'<part id="{part_id}">{"".join(bars)}</part>')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 4.0 Partwise//EN" '
        '"http://www.musicxml.org/dtds/partwise.dtd">\n'
        f'<score-partwise version="4.0"><work><work-title>{title}</work-title></work>'
        f"<part-list>{part_list}</part-list>{''.join(bodies)}</score-partwise>\n"
    )


def huge_musicxml(min_bytes: int) -> str:
    """A valid score of at least ``min_bytes``: over the import limit when asked to be."""
    bar_bytes = len(musicxml(measures=2)) - len(musicxml(measures=1))
    return musicxml(measures=min_bytes // bar_bytes + 2)


def midi_bytes(
    *,
    notes: int = 8,
    beat_s: float = 0.5,
    tracks: Sequence[tuple[str, int]] = (("Piano", 0),),
    ticks_per_beat: int = 480,
) -> bytes:
    """A type 1 MIDI file: each track plays ``notes`` notes of one beat, ``beat_s`` long.

    ``tracks`` are ``(name, program counted from 0)``.  The last note ends after
    ``notes * beat_s`` seconds.
    """
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("track_name", name="Generated", time=0))
    conductor.append(mido.MetaMessage("set_tempo", tempo=round(beat_s * 1_000_000), time=0))
    conductor.append(mido.MetaMessage("end_of_track", time=0))
    midi.tracks.append(conductor)
    for channel, (name, program) in enumerate(tracks):
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=name, time=0))
        track.append(mido.Message("program_change", channel=channel, program=program, time=0))
        for index in range(notes):
            note = 60 + (index * 2 + channel * 4) % 24
            track.append(mido.Message("note_on", channel=channel, note=note, velocity=80, time=0))
            track.append(
                mido.Message(
                    "note_off", channel=channel, note=note, velocity=0, time=ticks_per_beat
                )
            )
        track.append(mido.MetaMessage("end_of_track", time=0))
        midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def midi_without_notes() -> bytes:
    """A valid MIDI file with a tempo and a program change, and not one note."""
    midi = mido.MidiFile(type=1)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    track.append(mido.Message("program_change", program=0, time=0))
    track.append(mido.MetaMessage("end_of_track", time=960))
    midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()
