"""MIDI to MusicXML, for the ``xml`` and ``mxl`` downloads of a score imported from MIDI.

A MIDI file has no notation, so this is a plain quantizing transcription, lossy as Flat says its
own MIDI exports are: each track that plays notes becomes a part; onsets and ends are rounded to
sixteenth notes; notes that start together form a chord that lasts until the next onset at most
(one voice per part); durations that no single note value spells are split into tied notes, and
notes are tied across bar lines.  The tempo and time signature are the file's first ones.
Audio exports never go through this: they render the MIDI file itself.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any, Final
from xml.etree import ElementTree

import mido

from mediatasks.scores import midi, musicxml, score

__all__ = ["DIVISIONS", "midi_to_musicxml"]

#: MusicXML divisions per quarter note: the grid is the sixteenth note.
DIVISIONS: Final = 4
#: Note values that one note spells, in divisions, longest first: (duration, type, dotted).
_VALUES: Final = (
    (16, "whole", False),
    (12, "half", True),
    (8, "half", False),
    (6, "quarter", True),
    (4, "quarter", False),
    (3, "eighth", True),
    (2, "eighth", False),
    (1, "16th", False),
)
#: MIDI channels (counted from 1) for pitched parts: all but the percussion channel 10.
_CHANNELS: Final = tuple(channel for channel in range(1, 17) if channel != 10)
_STEPS: Final = (
    ("C", 0),
    ("C", 1),
    ("D", 0),
    ("D", 1),
    ("E", 0),
    ("F", 0),
    ("F", 1),
    ("G", 0),
    ("G", 1),
    ("A", 0),
    ("A", 1),
    ("B", 0),
)


def midi_to_musicxml(parsed: midi.MidiFile, parts: Sequence[score.Part], *, title: str) -> bytes:
    """A ``score-partwise`` MusicXML of the ``parts`` (tracks) of a MIDI file."""
    grid = parsed.ticks_per_beat / DIVISIONS
    tempo_us, beats, beat_type = _first_meta(parsed)
    bar = max(1, round(beats * DIVISIONS * 4 / beat_type))
    tracks = [_notes(parsed.tracks[part.track], grid) for part in parts if part.track is not None]
    end = max((start + length for notes in tracks for start, length, _ in notes), default=1)
    bars = max(1, -(-end // bar))

    root = ElementTree.Element("score-partwise", version="4.0")
    work = ElementTree.SubElement(root, "work")
    ElementTree.SubElement(work, "work-title").text = title
    part_list = ElementTree.SubElement(root, "part-list")
    for number, part in enumerate(parts, start=1):
        declared = ElementTree.SubElement(part_list, "score-part", id=part.id)
        ElementTree.SubElement(declared, "part-name").text = part.name
        instrument = ElementTree.SubElement(declared, "midi-instrument", id=f"{part.id}-I1")
        channel = 10 if part.percussion else _CHANNELS[(number - 1) % len(_CHANNELS)]
        ElementTree.SubElement(instrument, "midi-channel").text = str(channel)
        ElementTree.SubElement(instrument, "midi-program").text = str(part.program + 1)
    for part, notes in zip(parts, tracks, strict=False):
        element = ElementTree.SubElement(root, "part", id=part.id)
        pitches = [pitch for _, _, chord in notes for pitch in chord]
        bass = bool(pitches) and sum(pitches) / len(pitches) < 60
        measures = [
            ElementTree.SubElement(element, "measure", number=str(n + 1)) for n in range(bars)
        ]
        _attributes(measures[0], beats, beat_type, bass, tempo_us)
        _fill(measures, notes, bar)
    return musicxml.serialize(root)


def _first_meta(parsed: midi.MidiFile) -> tuple[int, int, int]:
    tempo_us = midi.DEFAULT_TEMPO_US
    beats, beat_type = 4, 4
    found_tempo = found_time = False
    for message in mido.merge_tracks(parsed.tracks):
        if message.type == "set_tempo" and not found_tempo:
            tempo_us, found_tempo = int(message.tempo), True
        elif message.type == "time_signature" and not found_time:
            beats, beat_type, found_time = int(message.numerator), int(message.denominator), True
    return tempo_us, max(1, beats), max(1, beat_type)


def _notes(track: Any, grid: float) -> list[tuple[int, int, tuple[int, ...]]]:
    """``(start, length, pitches)`` chords on the grid, one voice, sorted by start."""
    sounding: dict[tuple[int, int], list[int]] = collections.defaultdict(list)
    spans: list[tuple[int, int, int]] = []
    now = 0
    for message in track:
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            sounding[(message.channel, message.note)].append(now)
        elif message.type in ("note_on", "note_off"):
            starts = sounding.get((message.channel, message.note))
            if starts:
                spans.append((starts.pop(0), now, message.note))
    for (_, note), starts in sounding.items():
        spans.extend((start, now, note) for start in starts)  # never released: until the end
    chords: dict[int, tuple[int, set[int]]] = {}
    for start_tick, end_tick, note in spans:
        start = round(start_tick / grid)
        end = max(start + 1, round(end_tick / grid))
        longest, pitches = chords.get(start, (0, set()))
        pitches.add(note)
        chords[start] = (max(longest, end), pitches)
    onsets = sorted(chords)
    result = []
    for index, start in enumerate(onsets):
        end, pitches = chords[start]
        if index + 1 < len(onsets):
            end = min(end, onsets[index + 1])
        result.append((start, end - start, tuple(sorted(pitches))))
    return result


def _attributes(
    measure: ElementTree.Element, beats: int, beat_type: int, bass: bool, tempo_us: int
) -> None:
    attributes = ElementTree.SubElement(measure, "attributes")
    ElementTree.SubElement(attributes, "divisions").text = str(DIVISIONS)
    key = ElementTree.SubElement(attributes, "key")
    ElementTree.SubElement(key, "fifths").text = "0"
    time = ElementTree.SubElement(attributes, "time")
    ElementTree.SubElement(time, "beats").text = str(beats)
    ElementTree.SubElement(time, "beat-type").text = str(beat_type)
    clef = ElementTree.SubElement(attributes, "clef")
    ElementTree.SubElement(clef, "sign").text = "F" if bass else "G"
    ElementTree.SubElement(clef, "line").text = "4" if bass else "2"
    qpm = round(60_000_000 / tempo_us, 2)
    direction = ElementTree.SubElement(measure, "direction", placement="above")
    kind = ElementTree.SubElement(direction, "direction-type")
    metronome = ElementTree.SubElement(kind, "metronome")
    ElementTree.SubElement(metronome, "beat-unit").text = "quarter"
    ElementTree.SubElement(metronome, "per-minute").text = f"{qpm:g}"
    ElementTree.SubElement(direction, "sound", tempo=f"{qpm:g}")


def _fill(
    measures: list[ElementTree.Element],
    notes: list[tuple[int, int, tuple[int, ...]]],
    bar: int,
) -> None:
    """Write rests and (tied) chords into the bars."""
    events: list[tuple[int, int, tuple[int, ...]]] = []
    cursor = 0
    for start, length, pitches in notes:
        if start > cursor:
            events.append((cursor, start - cursor, ()))
        events.append((start, length, pitches))
        cursor = start + length
    total = len(measures) * bar
    if cursor < total:
        events.append((cursor, total - cursor, ()))
    for start, length, pitches in events:
        position, remaining = start, length
        while remaining > 0:
            in_bar = min(remaining, bar - position % bar)
            pieces = _split(in_bar)
            for index, (duration, kind, dotted) in enumerate(pieces):
                ties = []
                if pitches and position > start:
                    ties.append("stop")
                if pitches and (index < len(pieces) - 1 or in_bar < remaining):
                    ties.append("start")
                _note(measures[position // bar], pitches, duration, kind, dotted, ties)
                position += duration
            remaining -= in_bar


def _split(length: int) -> list[tuple[int, str, bool]]:
    """Note values, longest first, that add up to ``length`` divisions."""
    pieces = []
    while length > 0:
        for duration, kind, dotted in _VALUES:
            if duration <= length:
                pieces.append((duration, kind, dotted))
                length -= duration
                break
    return pieces


def _note(
    measure: ElementTree.Element,
    pitches: tuple[int, ...],
    duration: int,
    kind: str,
    dotted: bool,
    ties: Sequence[str],
) -> None:
    """One rest, or one chord: its notes in MusicXML's element order."""
    for index, pitch in enumerate(pitches or (None,)):
        note = ElementTree.SubElement(measure, "note")
        if index:
            ElementTree.SubElement(note, "chord")
        if pitch is None:
            ElementTree.SubElement(note, "rest")
        else:
            step, alter = _STEPS[pitch % 12]
            element = ElementTree.SubElement(note, "pitch")
            ElementTree.SubElement(element, "step").text = step
            if alter:
                ElementTree.SubElement(element, "alter").text = str(alter)
            ElementTree.SubElement(element, "octave").text = str(pitch // 12 - 1)
        ElementTree.SubElement(note, "duration").text = str(duration)
        for tie in ties:
            ElementTree.SubElement(note, "tie", type=tie)
        ElementTree.SubElement(note, "type").text = kind
        if dotted:
            ElementTree.SubElement(note, "dot")
        if ties:
            notations = ElementTree.SubElement(note, "notations")
            for tie in ties:
                ElementTree.SubElement(notations, "tied", type=tie)
