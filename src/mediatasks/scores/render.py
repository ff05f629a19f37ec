"""Rendering music to audio: MusicXML → MIDI (verovio), MIDI → WAV (FluidSynth), → MP3 (FFmpeg).

The steps, and what each needs:

1. :func:`musicxml_to_midi`: verovio (a wheel) engraves the MusicXML without page breaks and
   writes MIDI, and its *timemap* says when the music ends.  Verovio puts every part on MIDI
   channel 1 unless the MusicXML names channels, so the parts are moved to channels of their
   own (``midi.separate_channels``), or they would all play with the last part's instrument.
2. :func:`synthesize`: the ``fluidsynth`` program with a General MIDI SoundFont (Debian:
   ``fluidsynth`` and ``timgm6mb-soundfont``; no wheel ships a synthesizer with a SoundFont)
   renders 16-bit stereo WAV at 44.1 kHz, faster than real time.
3. :func:`encode`: FFmpeg (the ``imageio-ffmpeg`` binary) cuts FluidSynth's release and reverb
   tail :data:`RELEASE_S` after the last note ends, fading it out over that time, and writes MP3
   (LAME VBR ~190 kb/s) or WAV.  The audio therefore lasts as long as the score's own timing
   says, plus :data:`RELEASE_S`.

A missing synthesizer or SoundFont, music that cannot be read, music with no notes or longer than
:data:`MAX_MUSIC_S`: each raises ``errors.Unretriable`` with a message for the user.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import shutil
import threading
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Final

import verovio

from mediatasks import errors
from mediatasks.media import ffmpeg
from mediatasks.scores import midi

__all__ = [
    "MAX_MUSIC_S",
    "RELEASE_S",
    "SAMPLE_RATE_HZ",
    "SOUNDFONT_PATHS",
    "RenderedMidi",
    "Synthesizer",
    "check_duration",
    "encode",
    "encode_argv",
    "find_synthesizer",
    "musicxml_to_midi",
    "synthesize",
    "synthesize_argv",
]

#: Seconds of sound kept after the last note ends, faded out.
RELEASE_S: Final = 0.25
#: The longest music rendered to audio (30 minutes).
MAX_MUSIC_S: Final = 30 * 60.0
SAMPLE_RATE_HZ: Final = 44_100
#: FluidSynth's output gain: 0.8 leaves headroom for full chords.
SYNTH_GAIN: Final = 0.8
#: Where the General MIDI SoundFont is looked for, in order.  Debian's GM SoundFont packages
#: register ``default-GM.sf2``, which follows whichever of them is installed.
SOUNDFONT_PATHS: Final = (
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
    Path("/usr/share/sounds/sf3/default-GM.sf3"),
)
_SETUP_HINT: Final = "install it with: apt-get install fluidsynth timgm6mb-soundfont"
_STDERR_TAIL_CHARS: Final = 2000

#: Verovio's toolkit keeps process-wide state (its log level, resource path): one at a time.
_VEROVIO_LOCK: Final = threading.Lock()


@dataclasses.dataclass(frozen=True, kw_only=True)
class RenderedMidi:
    """Music as MIDI, and when its last note ends."""

    data: bytes
    music_s: float


@dataclasses.dataclass(frozen=True, kw_only=True)
class Synthesizer:
    """The FluidSynth program and the SoundFont it plays with."""

    binary: str
    soundfont: Path


def find_synthesizer(
    *,
    which_func: Callable[[str], str | None] | None = None,
    soundfonts: Sequence[Path] = SOUNDFONT_PATHS,
) -> Synthesizer:
    """The installed synthesizer; ``errors.Unretriable`` naming what is missing otherwise.

    ``fluidsynth`` is looked up on ``PATH`` at each call (``which_func`` replaces the lookup).
    """
    binary = (which_func or shutil.which)("fluidsynth")
    if binary is None:
        raise errors.Unretriable(
            "audio rendering is not available on this server: the FluidSynth synthesizer is "
            f"not installed ({_SETUP_HINT})"
        )
    for path in soundfonts:
        if path.is_file():
            return Synthesizer(binary=binary, soundfont=path)
    raise errors.Unretriable(
        "audio rendering is not available on this server: no General MIDI SoundFont found "
        f"({_SETUP_HINT})"
    )


def check_duration(music_s: float) -> float:
    """``music_s`` if the music has notes and is short enough to render; else ``Unretriable``."""
    if music_s <= 0:
        raise errors.Unretriable("Unable to render the score: it has no notes to play")
    if music_s > MAX_MUSIC_S:
        raise errors.Unretriable(
            f"Unable to render the score: it plays for {music_s / 60:.0f} minutes; "
            f"audio exports are limited to {MAX_MUSIC_S / 60:.0f} minutes"
        )
    return music_s


def musicxml_to_midi(xml: bytes) -> RenderedMidi:
    """Engrave MusicXML with verovio and return its MIDI; blocking, so call it in a thread.

    ``music_s`` is 0 for music without notes; see :func:`check_duration`.
    """
    try:
        text = xml.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.Unretriable("Unable to render the score: it is not UTF-8 MusicXML") from exc
    with _VEROVIO_LOCK:
        # Verovio's default resource path (its fonts) is per thread, and only the importing
        # thread gets it set: every other thread must set it before making a toolkit.
        verovio.setDefaultResourcePath(str(resources.files("verovio") / "data"))
        verovio.enableLog(verovio.LOG_OFF)
        toolkit = verovio.toolkit()
        # Only the timing is needed: no page layout makes loading about three times faster.
        toolkit.setOptions({"breaks": "none"})
        if not toolkit.loadData(text):
            raise errors.Unretriable("Unable to render the score: verovio could not read it")
        timemap = toolkit.renderToTimemap()
        encoded = toolkit.renderToMIDI()
    entries = [entry for entry in timemap if isinstance(entry, dict)]
    if any("on" in entry for entry in entries):
        music_s = max(float(entry.get("tstamp", 0)) for entry in entries) / 1000
    else:
        music_s = 0.0
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise errors.Unretriable("Unable to render the score: verovio wrote no MIDI") from exc
    parsed = midi.separate_channels(midi.parse(raw))
    return RenderedMidi(data=midi.to_bytes(parsed), music_s=music_s)


def synthesize_argv(synth: Synthesizer, midi_path: Path, wav_path: Path) -> list[str]:
    """FluidSynth's command: no MIDI input, no shell, render ``midi_path`` into a WAV file."""
    return [
        synth.binary,
        "-n",
        "-i",
        "-q",
        "-g",
        str(SYNTH_GAIN),
        "-r",
        str(SAMPLE_RATE_HZ),
        "-T",
        "wav",
        "-F",
        str(wav_path),
        str(synth.soundfont),
        str(midi_path),
    ]


async def synthesize(synth: Synthesizer, midi_path: Path, wav_path: Path) -> None:
    """Render ``midi_path`` to ``wav_path``; cancelling the caller kills FluidSynth."""
    argv = synthesize_argv(synth, midi_path, wav_path)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise errors.Unretriable(
            f"audio rendering is not available on this server: cannot run FluidSynth ({exc})"
        ) from exc
    try:
        stdout, stderr = await proc.communicate()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise
    output = (stderr or stdout).decode(errors="replace")[-_STDERR_TAIL_CHARS:]
    if proc.returncode != 0 or not wav_path.is_file() or wav_path.stat().st_size == 0:
        raise errors.Unretriable(
            "Unable to render the score: the synthesizer failed",
            detail=f"fluidsynth exited with {proc.returncode}\n{output}".rstrip(),
        )


def encode_argv(
    binary: str, wav_path: Path, out_path: Path, *, audio_format: str, music_s: float
) -> list[str]:
    """FFmpeg's command: pad or cut to the music plus :data:`RELEASE_S`, fade, encode."""
    total_s = music_s + RELEASE_S
    filters = f"apad=whole_dur={total_s:.3f},afade=t=out:st={music_s:.3f}:d={RELEASE_S:.3f}"
    if audio_format == "mp3":
        codec = ["-codec:a", "libmp3lame", "-qscale:a", "2"]
    elif audio_format == "wav":
        codec = ["-codec:a", "pcm_s16le"]
    else:
        raise ValueError(f"unsupported audio format {audio_format!r}")
    return [
        binary,
        "-i",
        str(wav_path),
        "-vn",
        "-af",
        filters,
        "-t",
        f"{total_s:.3f}",
        "-ar",
        str(SAMPLE_RATE_HZ),
        *codec,
        str(out_path),
    ]


async def encode(
    binary: str,
    wav_path: Path,
    out_path: Path,
    *,
    audio_format: str,
    music_s: float,
    on_progress: Callable[[float], Awaitable[None]] | None = None,
) -> float:
    """Trim, fade and encode the synthesized WAV; return the audio's duration in seconds."""
    argv = encode_argv(binary, wav_path, out_path, audio_format=audio_format, music_s=music_s)
    total_s = music_s + RELEASE_S
    await ffmpeg.run_ffmpeg(argv, duration_s=total_s, on_progress=on_progress)
    return total_s
