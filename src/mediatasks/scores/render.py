"""Rendering music to audio: MusicXML → MIDI (verovio), MIDI → WAV (a SoundFont synthesizer),
→ MP3 or WAV (FFmpeg).

The steps, and what each needs:

1. :func:`musicxml_to_midi`: verovio (a wheel) engraves the MusicXML without page breaks and
   writes MIDI, and its *timemap* says when the music ends.  Verovio puts every part on MIDI
   channel 1 unless the MusicXML names channels, so the parts are moved to channels of their
   own (``midi.separate_channels``), or they would all play with the last part's instrument.
2. :func:`synthesize`: ``python -m mediatasks.scores.synth`` (a process of its own, killed when
   the task is cancelled) plays the MIDI with a General MIDI SoundFont into 16-bit stereo WAV,
   about a hundred times faster than real time.  Both come from wheels, so audio exports need no
   root and no system package: the synthesizer is ``midirenderer`` (rustysynth, a SoundFont
   synthesizer in Rust, with no dependencies) and the SoundFont is TimGM6mb, which the
   ``pretty-midi`` wheel ships (``soundfont_path`` names another one).  ``tinysoundfont`` was
   the other candidate; it cannot be installed from PyPI alone, as it requires PyAudio, which
   has no Linux wheel and builds only against PortAudio's headers.
3. :func:`encode`: FFmpeg (the ``imageio-ffmpeg`` binary) cuts the synthesizer's release
   :data:`RELEASE_S` after the last note ends, fading it out over that time, and writes MP3
   (LAME VBR ~190 kb/s) or WAV at 44.1 kHz.  The audio therefore lasts as long as the score's
   own timing says, plus :data:`RELEASE_S`.

A missing SoundFont, music that cannot be read, music with no notes or longer than
:data:`MAX_MUSIC_S`: each raises ``errors.Unretriable`` with a message for the user.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import importlib.util
import sys
import threading
from collections.abc import Awaitable, Callable
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
    "VEROVIO_LOCK",
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
#: The package whose wheel ships the default SoundFont, and its file name there.
_SOUNDFONT_PACKAGE: Final = ("pretty_midi", "TimGM6mb.sf2")
_STDERR_TAIL_CHARS: Final = 2000

#: Verovio's toolkit keeps process-wide state (its log level, resource path): one at a time.
VEROVIO_LOCK: Final = threading.Lock()


@dataclasses.dataclass(frozen=True, kw_only=True)
class RenderedMidi:
    """Music as MIDI, and when its last note ends."""

    data: bytes
    music_s: float


@dataclasses.dataclass(frozen=True, kw_only=True)
class Synthesizer:
    """The Python that runs the synthesizer process, and the SoundFont it plays with."""

    python: str
    soundfont: Path


def _bundled_soundfont() -> Path | None:
    # find_spec locates the package without importing it (pretty-midi imports numpy).
    package, name = _SOUNDFONT_PACKAGE
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / name
    return path if path.is_file() else None


def find_synthesizer(soundfont_path: str = "") -> Synthesizer:
    """The synthesizer and its SoundFont: ``soundfont_path``, else the bundled TimGM6mb.

    ``errors.Unretriable`` says what is missing, so that an export fails with a reason.
    """
    unavailable = "audio rendering is not available on this server"
    if importlib.util.find_spec("midirenderer") is None:
        raise errors.Unretriable(
            f"{unavailable}: the midirenderer package is not installed (pip install midirenderer)"
        )
    if soundfont_path:
        path = Path(soundfont_path)
        if not path.is_file():
            raise errors.Unretriable(
                f"{unavailable}: the SoundFont {soundfont_path} (MEDIATASKS_SOUNDFONT_PATH) "
                "does not exist"
            )
        return Synthesizer(python=sys.executable, soundfont=path)
    bundled = _bundled_soundfont()
    if bundled is None:
        raise errors.Unretriable(
            f"{unavailable}: no General MIDI SoundFont (pip install pretty-midi, which ships "
            "one, or set MEDIATASKS_SOUNDFONT_PATH)"
        )
    return Synthesizer(python=sys.executable, soundfont=bundled)


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
    with VEROVIO_LOCK:
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
    """The synthesizer process' command (no shell): render ``midi_path`` into a WAV file."""
    return [
        synth.python,
        "-m",
        "mediatasks.scores.synth",
        str(synth.soundfont),
        str(midi_path),
        str(wav_path),
    ]


async def synthesize(synth: Synthesizer, midi_path: Path, wav_path: Path) -> None:
    """Render ``midi_path`` to ``wav_path``; cancelling the caller kills the synthesizer."""
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
            f"audio rendering is not available on this server: cannot run the synthesizer ({exc})"
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
            detail=f"the synthesizer exited with {proc.returncode}\n{output}".rstrip(),
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
