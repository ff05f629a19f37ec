"""The synthesizer process: ``python -m mediatasks.scores.synth SOUNDFONT MIDI WAV``.

MIDI is played with a General MIDI SoundFont by ``midirenderer`` (a wheel: the rustysynth
synthesizer compiled for Python), into 16-bit stereo WAV at 48 kHz.  It runs in a process of its
own because the renderer holds the interpreter for the whole rendering and cannot be interrupted:
in a thread it would stall the worker's event loop (heartbeats included), and a cancelled task
could not stop it.  A process is killed like FFmpeg is (``render.synthesize``).

The music is given :data:`TAIL_S` more to play after its last event, so that the last notes
release naturally instead of stopping dead; ``render.encode`` then cuts and fades the audio to
the score's own length.

Exit status 0 with the WAV written, else 1 with one line on stderr.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Final

import mido

__all__ = ["TAIL_S", "main", "with_tail"]

#: Seconds of sound rendered after the music's last event.
TAIL_S: Final = 1.0


def with_tail(data: bytes, tail_s: float = TAIL_S) -> bytes:
    """The MIDI file ``data`` with ``tail_s`` of silence after its last event."""
    midi = mido.MidiFile(file=io.BytesIO(data))
    last_tempo = (-1, 500_000)  # (tick, tempo); MIDI's default is 120 quarter notes a minute
    end_tick = 0
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "set_tempo" and tick >= last_tempo[0]:
                last_tempo = (tick, message.tempo)
        end_tick = max(end_tick, tick)
    tempo = last_tempo[1]
    extra = int(mido.second2tick(tail_s, midi.ticks_per_beat, tempo))
    padding = mido.MidiTrack([mido.MetaMessage("end_of_track", time=end_tick + extra)])
    if midi.type == 0:
        midi.type = 1  # a second track needs a multi-track file
    midi.tracks.append(padding)
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


def main(argv: list[str]) -> int:
    """Render ``argv = [soundfont, midi, wav]``."""
    if len(argv) != 3:
        sys.stderr.write("usage: python -m mediatasks.scores.synth SOUNDFONT MIDI WAV\n")
        return 2
    soundfont, midi_path, wav_path = (Path(arg) for arg in argv)
    try:
        import midirenderer

        wav = midirenderer.render_wave_from(
            soundfont.read_bytes(), with_tail(midi_path.read_bytes())
        )
        partial = wav_path.with_name(wav_path.name + ".part")
        partial.write_bytes(wav)
        os.replace(partial, wav_path)
    except Exception as exc:  # one line for the task's timeline, whatever went wrong
        sys.stderr.write(f"synthesis failed: {type(exc).__name__}: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
