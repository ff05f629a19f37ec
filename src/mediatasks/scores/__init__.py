"""Music scores, for Flat's dialect: import, storage and rendering to audio.

A score is a document, not a task: it lives in the blob store (``library``), never in the task
database.  The modules, in the order a score meets them:

===============  ==================================================================================
``source``       what a client sent: Base64 or text, sniffed (MusicXML, MXL, MIDI), checked
``musicxml``     MusicXML and MXL: parse, list the parts, keep only some parts, pack and unpack
``midi``         MIDI files: parse, list the parts (tracks), keep only some, how long they play
``score``        the immutable ``Score``, its ``Revision`` and ``Part`` records
``library``      scores as JSON documents and files in the blob store, one folder per project
``export``       the ``audio-export`` task: its params, progress steps and output keys
``render``       MusicXML to MIDI (verovio), MIDI to WAV (a SoundFont), WAV to MP3 (FFmpeg)
``synth``        the synthesizer process: MIDI and a SoundFont to WAV (midirenderer)
===============  ==================================================================================
"""

from __future__ import annotations

__all__: list[str] = []
