"""Score use cases: what Flat's dialect (``/v2``) and the dashboard's score pages ask for.

Import a score, list and read scores, cut a revision's file (some parts of it, a transcription
of a MIDI file, a thumbnail), queue an audio export, and follow or cancel it.  Each function
takes the stores it needs and plain values, and raises only domain errors (``errors``); none
knows about HTTP.  Parsing, rendering and transcription run in threads: they are CPU work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from mediatasks import errors, service, tasks, taskstore
from mediatasks.blobstore import base as blobstore
from mediatasks.scores import (
    export,
    library,
    midi,
    musicxml,
    render,
    source,
    thumbnail,
    transcription,
)
from mediatasks.scores import score as score_module

__all__ = [
    "FILE_FORMATS",
    "QUEUED",
    "all_events",
    "cancel_export",
    "exported_audio_key",
    "get_export",
    "get_score",
    "import_score",
    "latest_rendering",
    "list_exports",
    "list_scores",
    "queue_export",
    "revision_file",
    "select_parts",
    "thumbnail_png",
]

#: The score files a revision can be read as (besides its audio renderings and thumbnail).
FILE_FORMATS: Final = ("xml", "mxl", "midi")
#: The phases in which an audio export can still be cancelled: before a worker takes it.
QUEUED: Final = frozenset({tasks.Phase.PENDING, tasks.Phase.WAITING})
_EVENTS_PAGE: Final = 1000
#: How many export tasks ``list_exports`` looks through when it keeps one score's.
_SCAN_LIMIT: Final = 500


async def import_score(
    blobs: blobstore.BlobStore,
    *,
    project_id: str,
    data: str,
    data_encoding: str | None = None,
    filename: str | None = None,
    title: str | None = None,
    privacy: str = "private",
    now: datetime | None = None,
) -> score_module.Score:
    """Store a new score from a file (MusicXML text, or Base64 of MusicXML, MXL or MIDI).

    Raises ``errors.InvalidInput`` with the reason when the file cannot be read or plays nothing.
    """
    imported = await asyncio.to_thread(
        source.read, data, data_encoding=data_encoding, filename=filename, title=title
    )
    return await library.Library(blobs).create(
        project_id, imported, privacy=privacy, created_at=now or datetime.now(UTC)
    )


async def get_score(
    blobs: blobstore.BlobStore, project_id: str, score_id: str
) -> score_module.Score:
    """The score ``score_id`` of the project; ``errors.NotFound`` otherwise."""
    return await library.Library(blobs).get(project_id, score_id)


async def list_scores(blobs: blobstore.BlobStore, project_id: str) -> list[score_module.Score]:
    """The project's scores, newest first."""
    return await library.Library(blobs).list(project_id)


def select_parts(revision: score_module.Revision, part_ids: Sequence[str] | None) -> list[str]:
    """The part ids asked for, checked and in score order; ``[]`` means every part.

    Raises ``errors.InvalidInput`` for a part the revision does not have.
    """
    return export.normalized_parts(revision, part_ids)


async def revision_file(
    blobs: blobstore.BlobStore,
    owner: score_module.Score,
    revision: score_module.Revision,
    file_format: str,
    part_ids: Sequence[str],
) -> bytes:
    """The ``xml``, ``mxl`` or ``midi`` file of a revision, or of some of its parts.

    A MIDI import read as MusicXML is transcribed; a MusicXML import read as MIDI is rendered.
    Raises ``errors.InvalidInput`` for another format, and when the score cannot be rendered.
    """
    if file_format not in FILE_FORMATS:
        raise errors.InvalidInput(f"format {file_format!r} is not a score file format")
    scores = library.Library(blobs)
    if revision.is_midi:
        if file_format == "midi" and not part_ids:
            return await scores.source(owner, revision)
        selected = revision.select_parts(part_ids)
        data = await scores.playable(owner, revision)
        if file_format == "midi":
            tracks = {part.track for part in selected if part.track is not None}
            return await asyncio.to_thread(_midi_tracks, data, tracks)
        xml = await asyncio.to_thread(_transcribe, data, selected, owner.title)
        if file_format == "mxl":
            return await asyncio.to_thread(musicxml.pack_mxl, xml)
        return xml
    if (
        file_format == "mxl"
        and not part_ids
        and revision.source_format is score_module.SourceFormat.MXL
    ):
        return await scores.source(owner, revision)
    xml = await scores.playable(owner, revision)
    if part_ids:
        xml = await asyncio.to_thread(_musicxml_parts, xml, part_ids)
    if file_format == "xml":
        return xml
    if file_format == "mxl":
        return await asyncio.to_thread(musicxml.pack_mxl, xml)
    try:
        rendered = await asyncio.to_thread(render.musicxml_to_midi, xml)
    except errors.TaskFailure as exc:
        raise errors.InvalidInput(exc.message) from None
    return rendered.data


async def thumbnail_png(
    blobs: blobstore.BlobStore,
    owner: score_module.Score,
    revision: score_module.Revision,
    part_ids: Sequence[str],
) -> bytes:
    """A PNG picture of the first page of a revision (or of some of its parts).

    Raises ``errors.InvalidInput`` when the score cannot be engraved.
    """
    xml = await revision_file(blobs, owner, revision, "xml", part_ids)
    return await asyncio.to_thread(thumbnail.render_png, xml)


async def latest_rendering(
    blobs: blobstore.BlobStore,
    owner: score_module.Score,
    revision: score_module.Revision,
    audio_format: str,
    part_ids: Sequence[str],
) -> str | None:
    """The blob key of the newest audio rendering of these parts, or ``None`` if none exists."""
    key = export.rendering_key(owner, revision, audio_format, part_ids)
    return key if await blobs.exists(key) else None


async def queue_export(
    store: taskstore.TaskStore,
    blobs: blobstore.BlobStore,
    *,
    project_id: str,
    score_id: str,
    revision_ref: str,
    audio_format: str,
    part_ids: Sequence[str] | None,
    max_retries: int,
) -> tasks.Task:
    """Queue the rendering of a score revision (``last`` is the newest) to mp3 or wav.

    Raises ``errors.NotFound`` for an unknown score or revision, and ``errors.InvalidInput`` for
    another format or a part the revision does not have.
    """
    return await export.create_audio_export(
        store,
        library.Library(blobs),
        project_id=project_id,
        score_id=score_id,
        revision_ref=revision_ref,
        audio_format=audio_format,
        part_ids=part_ids,
        max_retries=max_retries,
    )


async def get_export(store: taskstore.TaskStore, project_id: str, task_id: str) -> tasks.Task:
    """The project's audio-export task ``task_id``; ``errors.NotFound`` for any other task."""
    try:
        task = await store.get_task(task_id, project_id)
    except errors.NotFound:
        task = None
    if task is None or task.type != tasks.TaskType.AUDIO_EXPORT:
        raise errors.NotFound(f"task {task_id!r} not found")
    return task


async def list_exports(
    store: taskstore.TaskStore,
    project_id: str,
    *,
    limit: int = 20,
    phases: Sequence[tasks.Phase] = (),
    score_id: str | None = None,
) -> list[tasks.Task]:
    """The project's audio-export tasks, newest first: in ``phases`` (any when empty), and of
    the score ``score_id`` when given (among the project's newest exports)."""
    fetched = limit if score_id is None else max(limit, _SCAN_LIMIT)
    found: list[tasks.Task] = []
    each: Sequence[tasks.Phase | None] = phases or [None]
    for phase in each:  # one query per phase: the store filters on one value
        query = taskstore.Query(
            project_id=project_id,
            limit=fetched,
            order=[("created_at", True), ("id", True)],
            types=[tasks.TaskType.AUDIO_EXPORT],
            filters=[]
            if phase is None
            else [taskstore.Filter(field="phase", op="eq", value=str(phase))],
        )
        found += (await store.list_tasks(query)).items
    if score_id is not None:
        found = [task for task in found if task.params.get("score") == score_id]
    found.sort(key=lambda task: (task.created_at, task.id), reverse=True)
    return found[:limit]


async def cancel_export(store: taskstore.TaskStore, project_id: str, task_id: str) -> tasks.Task:
    """Cancel an audio export that no worker has taken yet.

    Raises ``errors.NotFound`` for a task the project has not, and ``errors.InvalidTransition``
    once the export runs or has ended.
    """
    task = await get_export(store, project_id, task_id)
    if task.phase not in QUEUED:
        raise errors.InvalidTransition(f"task {task.id} is {task.phase}: it cannot be cancelled")
    return await service.cancel_task(store, task.id, project_id)


async def all_events(store: taskstore.TaskStore, task_id: str) -> list[tasks.TaskEvent]:
    """Every event of a task, oldest first."""
    found: list[tasks.TaskEvent] = []
    after_id = 0
    while True:
        page = await store.list_events(task_id, after_id=after_id, limit=_EVENTS_PAGE)
        found.extend(page)
        if len(page) < _EVENTS_PAGE:
            return found
        after_id = page[-1].id


def exported_audio_key(task: tasks.Task) -> str | None:
    """The blob key of a completed audio export's file; ``None`` before it is done."""
    if task.type != tasks.TaskType.AUDIO_EXPORT or task.phase is not tasks.Phase.COMPLETED:
        return None
    produced = (task.output or {}).get("audioExport")
    if not isinstance(produced, dict) or not isinstance(produced.get("key"), str):
        return None
    key: str = produced["key"]
    return key


def _midi_tracks(data: bytes, tracks: set[int]) -> bytes:
    return midi.to_bytes(midi.select_tracks(midi.parse(data), tracks))


def _transcribe(data: bytes, parts: Sequence[score_module.Part], title: str) -> bytes:
    return transcription.midi_to_musicxml(midi.parse(data), parts, title=title)


def _musicxml_parts(xml: bytes, part_ids: Sequence[str]) -> bytes:
    return musicxml.serialize(musicxml.select_parts(musicxml.parse(xml), part_ids))
