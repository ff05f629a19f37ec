"""``audio-export``: render a score revision (all parts, or some) to MP3 or WAV (Flat's dialect).

Steps and progress (``scores.export`` names the milestones, which the Flat view turns into text):
read the score and its parts (``PARSING``), MusicXML → MIDI with verovio (``RENDERING``), MIDI →
WAV with a SoundFont synthesizer (``ENCODING``), then trim, fade and encode with FFmpeg, whose
own progress fills the rest.  Everything is staged in the attempt's work folder; the file is
published under ``exports/<projectId>/<taskId>/`` only once it is complete, and a copy is kept
with the revision for ``GET /v2/scores/.../revisions/.../{mp3,wav}``.

Bad music (unreadable, no notes, too long), a score deleted meanwhile and a missing synthesizer
fail the task at once with a readable message; nothing is retried that cannot pass.
"""

from __future__ import annotations

import asyncio

import pydantic

from mediatasks import errors
from mediatasks.media import ffmpeg
from mediatasks.scores import export, library, midi, musicxml, render
from mediatasks.worker import handler, outcome

__all__ = ["AudioExportHandler"]


class AudioExportHandler:
    """Turns a stored score revision into an audio file."""

    async def run(self, ctx: handler.Context) -> outcome.Complete:
        try:
            params = export.AudioExportParams.model_validate(ctx.task.params)
        except pydantic.ValidationError as exc:
            raise errors.Unretriable(f"invalid audio export task: {exc}") from exc
        synth = render.find_synthesizer(ctx.settings.soundfont_path)
        await ctx.report_progress(export.PARSING)

        scores = library.Library(ctx.blobs)
        try:
            owner = await scores.get(ctx.task.project_id, params.score)
            revision = owner.revision(params.revision)
            playable = await scores.playable(owner, revision)
        except errors.NotFound as exc:
            raise errors.Unretriable(f"Unable to render the score: {exc.message}") from exc
        try:
            selected = revision.select_parts(params.parts)
        except errors.InvalidInput as exc:
            raise errors.Unretriable(f"Unable to render the score: {exc.message}") from exc
        ctx.facts["parts"] = [part.id for part in selected]

        midi_path = ctx.workdir / "score.mid"
        if revision.is_midi:
            tracks = {part.track for part in selected if part.track is not None}
            rendered = await asyncio.to_thread(_midi_tracks, playable, tracks)
        else:
            part_ids = [part.id for part in selected]
            rendered = await asyncio.to_thread(
                _musicxml_parts, playable, part_ids, len(revision.parts)
            )
        music_s = render.check_duration(rendered.music_s)
        await asyncio.to_thread(midi_path.write_bytes, rendered.data)
        await ctx.report_progress(export.RENDERING)

        wav_path = ctx.workdir / "synth.wav"
        await render.synthesize(synth, midi_path, wav_path)
        await ctx.report_progress(export.ENCODING)

        out_dir = ctx.workdir / "out"
        out_dir.mkdir()
        out_path = out_dir / f"score.{params.format}"
        binary = ffmpeg.ffmpeg_binary(ctx.settings.ffmpeg_path)
        duration_s = await render.encode(
            binary,
            wav_path,
            out_path,
            audio_format=params.format,
            music_s=music_s,
            on_progress=ctx.progress_span(export.ENCODING, 0.97),
        )

        prefix = export.output_prefix(ctx.task.project_id, ctx.task.id)
        key = f"{prefix}/{out_path.name}"
        await ctx.blobs.put_file(key, out_path)
        # The revision's copy is the same rendering; a later completion failure leaves it valid.
        await ctx.blobs.put_file(
            export.rendering_key(owner, revision, params.format, params.parts), out_path
        )
        size_bytes = out_path.stat().st_size
        await ctx.report_progress(1.0)
        return outcome.Complete(
            output={
                "audioExport": {
                    "key": key,
                    "format": params.format,
                    "durationS": round(duration_s, 3),
                    "musicS": round(music_s, 3),
                    "sizeBytes": size_bytes,
                }
            },
            published=[prefix],
        )


def _midi_tracks(data: bytes, tracks: set[int]) -> render.RenderedMidi:
    """The selected tracks of a stored MIDI file, and when their last note ends."""
    try:
        selected = midi.select_tracks(midi.parse(data), tracks)
    except errors.InvalidInput as exc:
        raise errors.Unretriable(f"Unable to render the score: {exc.message}") from exc
    music_s = midi.music_duration_s(selected)
    return render.RenderedMidi(data=midi.to_bytes(selected), music_s=music_s)


def _musicxml_parts(xml: bytes, part_ids: list[str], part_count: int) -> render.RenderedMidi:
    """The MIDI of the selected parts of a stored MusicXML."""
    if len(part_ids) != part_count:
        try:
            root = musicxml.parse(xml)
        except errors.InvalidInput as exc:
            raise errors.Unretriable(f"Unable to render the score: {exc.message}") from exc
        xml = musicxml.serialize(musicxml.select_parts(root, part_ids))
    return render.musicxml_to_midi(xml)
