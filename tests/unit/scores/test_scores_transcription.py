"""MIDI to MusicXML for the xml and mxl downloads of MIDI imports: valid, engravable, in time."""

from __future__ import annotations

import io
import random

import mido
import pytest

from mediatasks.scores import midi, musicxml, render, transcription
from tests import scoregen


def transcribe(data: bytes) -> bytes:
    parsed = midi.parse(data)
    return transcription.midi_to_musicxml(parsed, midi.parts(parsed), title="T")


def test_a_simple_tune_keeps_its_notes_parts_and_timing() -> None:
    data = scoregen.midi_bytes(notes=8, beat_s=0.5, tracks=(("Piano", 0), ("Strings", 48)))
    xml = transcribe(data)
    summary = musicxml.summarize(musicxml.parse(xml))
    assert [(p.id, p.name, p.program) for p in summary.parts] == [
        ("P1", "Piano", 0),
        ("P2", "Strings", 48),
    ]
    assert summary.note_count == 16
    assert summary.title == "T"
    rendered = render.musicxml_to_midi(xml)
    assert rendered.music_s == pytest.approx(midi.music_duration_s(midi.parse(data)))


def test_long_notes_are_tied_across_bar_lines() -> None:
    track = mido.MidiTrack(
        [
            mido.Message("note_on", note=61, velocity=80, time=480 * 3),
            mido.Message("note_off", note=61, velocity=0, time=480 * 3),  # beat 4 to beat 2
        ]
    )
    buffer = io.BytesIO()
    mido.MidiFile(tracks=[track]).save(file=buffer)
    root = musicxml.parse(transcribe(buffer.getvalue()))
    notes = [n for n in root.iterfind("part/measure/note") if n.find("pitch") is not None]
    assert [[t.get("type") for t in n.findall("tie")] for n in notes] == [["start"], ["stop"]]
    assert [n.findtext("pitch/alter") for n in notes] == ["1", "1"]  # C sharp
    # Two whole bars at 120 qpm: verovio's timing counts the rest that completes the last bar.
    assert render.musicxml_to_midi(musicxml.serialize(root)).music_s == pytest.approx(4.0)


def test_a_messy_performance_still_gives_valid_engravable_musicxml() -> None:
    rng = random.Random(7)
    track = mido.MidiTrack()
    events = []
    for _ in range(60):
        start, length, note = rng.randint(0, 96 * 30), rng.randint(3, 96 * 5), rng.randint(30, 90)
        events += [(start, "note_on", note), (start + length, "note_off", note)]
    now = 0
    for tick, kind, note in sorted(events):
        track.append(mido.Message(kind, note=note, velocity=64, time=tick - now))
        now = tick
    buffer = io.BytesIO()
    mido.MidiFile(ticks_per_beat=96, tracks=[track]).save(file=buffer)
    xml = transcribe(buffer.getvalue())
    assert musicxml.summarize(musicxml.parse(xml)).note_count > 0
    rendered = render.musicxml_to_midi(xml)
    assert rendered.music_s > 0
