"""Standard MIDI Files, with ``mido``: parse and check, list the parts, select parts, timing.

A MIDI file's *parts* are its tracks that play notes, named ``P1``, ``P2``... in track order.
Selecting parts silences the other tracks but keeps their meta events (tempo, time signature),
so the timing of what is left does not change.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterable
from typing import Any, Final

import mido

from mediatasks import errors
from mediatasks.scores import score

__all__ = [
    "DEFAULT_TEMPO_US",
    "PERCUSSION_CHANNEL",
    "MidiFile",
    "music_duration_s",
    "parse",
    "parts",
    "select_tracks",
    "separate_channels",
    "to_bytes",
]

#: Microseconds per quarter note until a ``set_tempo`` says otherwise (120 bpm).
DEFAULT_TEMPO_US: Final = 500_000
#: General MIDI's channel 10, counted from 0.
PERCUSSION_CHANNEL: Final = 9

#: ``mido.MidiFile``; mido ships no type information.
MidiFile = Any


def parse(data: bytes) -> MidiFile:
    """The MIDI file in ``data``; ``errors.InvalidInput`` if it cannot be read."""
    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except Exception as exc:  # mido raises OSError, EOFError, ValueError, KeyError... on junk
        raise errors.InvalidInput(
            f"the MIDI file cannot be read: {exc or type(exc).__name__}"
        ) from exc
    if midi.type == 2:
        raise errors.InvalidInput("type 2 MIDI files (independent sequences) are not supported")
    if midi.ticks_per_beat <= 0:
        raise errors.InvalidInput("the MIDI file uses SMPTE time division, which is not supported")
    return midi


def _is_note_start(message: Any) -> bool:
    return bool(message.type == "note_on" and message.velocity > 0)


def parts(midi: MidiFile) -> tuple[score.Part, ...]:
    """The tracks that play at least one note, as parts ``P1``, ``P2``..."""
    found: list[score.Part] = []
    for index, track in enumerate(midi.tracks):
        notes = [message for message in track if _is_note_start(message)]
        if not notes:
            continue
        name = None
        program = None
        for message in track:
            if name is None and message.type in ("track_name", "instrument_name"):
                name = str(message.name).strip() or None
            if program is None and message.type == "program_change":
                program = int(message.program)
        number = len(found) + 1
        found.append(
            score.Part(
                id=f"P{number}",
                name=name or f"Track {number}",
                program=program or 0,
                percussion=notes[0].channel == PERCUSSION_CHANNEL,
                track=index,
            )
        )
    return tuple(found)


def music_duration_s(midi: MidiFile) -> float:
    """Seconds from the start to the end of the last note, following the file's tempo changes."""
    tempo_us = DEFAULT_TEMPO_US
    now_s = 0.0
    end_s = 0.0
    sounding = False
    for message in mido.merge_tracks(midi.tracks):
        if message.time:
            now_s += mido.tick2second(message.time, midi.ticks_per_beat, tempo_us)
        if message.type == "set_tempo":
            tempo_us = message.tempo
        elif message.type in ("note_on", "note_off"):
            end_s = now_s
            sounding = True
    return end_s if sounding else 0.0


def select_tracks(midi: MidiFile, keep: Collection[int]) -> MidiFile:
    """A copy that plays only the tracks ``keep``; the others keep only their meta events."""
    selected = mido.MidiFile(type=midi.type, ticks_per_beat=midi.ticks_per_beat)
    for index, track in enumerate(midi.tracks):
        if index in keep:
            selected.tracks.append(track.copy())
        else:
            selected.tracks.append(_meta_only(track))
    return selected


def separate_channels(midi: MidiFile) -> MidiFile:
    """A copy where no two tracks share a MIDI channel (percussion stays on channel 10).

    Verovio writes every part on channel 1 unless the MusicXML names a channel, so the parts'
    program changes would overwrite each other and everything would play with one instrument.
    """
    taken: set[int] = set()
    fixed = mido.MidiFile(type=midi.type, ticks_per_beat=midi.ticks_per_beat)
    for track in midi.tracks:
        channels = sorted({m.channel for m in track if not m.is_meta and hasattr(m, "channel")})
        mapping: dict[int, int] = {}
        for channel in channels:
            if channel == PERCUSSION_CHANNEL:
                mapping[channel] = channel
            elif channel in taken:
                free = [c for c in range(16) if c not in taken and c != PERCUSSION_CHANNEL]
                mapping[channel] = free[0] if free else channel
            else:
                mapping[channel] = channel
            taken.add(mapping[channel])
        copied = mido.MidiTrack()
        for message in track:
            if not message.is_meta and hasattr(message, "channel"):
                message = message.copy(channel=mapping[message.channel])
            copied.append(message)
        fixed.tracks.append(copied)
    return fixed


def to_bytes(midi: MidiFile) -> bytes:
    """The file's bytes."""
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def _meta_only(track: Iterable[Any]) -> Any:
    kept = mido.MidiTrack()
    carried = 0
    for message in track:
        if message.is_meta:
            kept.append(message.copy(time=message.time + carried))
            carried = 0
        else:
            carried += message.time
    return kept
