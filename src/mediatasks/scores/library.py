"""Scores in the blob store: one folder per score, in a folder per project.

The layout (every key under ``scores/<projectId>/<scoreId>/``)::

    score.json                                  the Score document (title, revisions, parts)
    revisions/<revisionId>/source.<ext>         the file as imported (musicxml, mxl or mid)
    revisions/<revisionId>/score.musicxml       normalized MusicXML (MusicXML and MXL imports)
    revisions/<revisionId>/audio/<variant>.<f>  the latest rendering of an audio export

The project id in the path is what keeps one project's scores from another's: a key of another
project looks under its own folder and finds nothing (404).  ``score.json`` is written last, so a
score is never visible before its files are.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import datetime
from pathlib import Path

from mediatasks import errors
from mediatasks.blobstore import base as blobstore
from mediatasks.scores import score as score_module
from mediatasks.scores import source

__all__ = ["PLAYABLE_MUSICXML", "Library", "revision_prefix", "score_prefix"]

#: The stored name of a revision's normalized MusicXML.
PLAYABLE_MUSICXML = "score.musicxml"


def score_prefix(project_id: str, score_id: str) -> str:
    """The folder of a score's files."""
    return f"scores/{project_id}/{score_id}"


def revision_prefix(owner: score_module.Score, revision: score_module.Revision) -> str:
    """The folder of one revision's files."""
    return f"{score_prefix(owner.project_id, owner.id)}/revisions/{revision.id}"


class Library:
    """Reads and writes score documents and their files in a blob store."""

    def __init__(self, blobs: blobstore.BlobStore) -> None:
        self._blobs = blobs

    @property
    def blobs(self) -> blobstore.BlobStore:
        """The blob store the scores live in."""
        return self._blobs

    async def create(
        self,
        project_id: str,
        imported: source.Imported,
        *,
        privacy: str,
        created_at: datetime,
    ) -> score_module.Score:
        """Store a new score whose first revision is ``imported``."""
        revision = score_module.Revision(
            id=score_module.new_id(),
            created_at=created_at,
            source_format=imported.source_format,
            parts=imported.parts,
            source_size_bytes=len(imported.source),
        )
        created = score_module.Score(
            id=score_module.new_id(),
            project_id=project_id,
            title=imported.title,
            privacy=privacy,
            composer=imported.composer,
            created_at=created_at,
            revisions=(revision,),
        )
        folder = revision_prefix(created, revision)
        await self._write(f"{folder}/{revision.source_name}", imported.source)
        if not revision.is_midi:
            await self._write(f"{folder}/{PLAYABLE_MUSICXML}", imported.playable)
        document = json.dumps(created.to_doc(), indent=1).encode()
        await self._write(f"{score_prefix(project_id, created.id)}/score.json", document)
        return created

    async def get(self, project_id: str, score_id: str) -> score_module.Score:
        """The score ``score_id`` of ``project_id``; ``errors.NotFound`` otherwise."""
        if not score_module.is_id(score_id):
            raise errors.NotFound(f"score {score_id!r} not found")
        try:
            raw = await self.read(f"{score_prefix(project_id, score_id)}/score.json")
        except errors.NotFound:
            raise errors.NotFound(f"score {score_id!r} not found") from None
        found = score_module.Score.from_doc(json.loads(raw))
        if found.project_id != project_id:  # a copied folder must not leak
            raise errors.NotFound(f"score {score_id!r} not found")
        return found

    async def list(self, project_id: str) -> list[score_module.Score]:
        """Every score of ``project_id``, newest first."""
        keys = await self._blobs.list_keys(f"scores/{project_id}/")
        found = []
        for key in keys:
            folder, _, name = key.rpartition("/")
            score_id = folder.rpartition("/")[2]
            if name == "score.json" and folder == score_prefix(project_id, score_id):
                try:
                    found.append(await self.get(project_id, score_id))
                except errors.NotFound:  # removed meanwhile
                    continue
        found.sort(key=lambda owner: (owner.created_at, owner.id), reverse=True)
        return found

    async def playable(self, owner: score_module.Score, revision: score_module.Revision) -> bytes:
        """What rendering reads: the normalized MusicXML, or the MIDI file."""
        name = revision.source_name if revision.is_midi else PLAYABLE_MUSICXML
        return await self.read(f"{revision_prefix(owner, revision)}/{name}")

    async def source(self, owner: score_module.Score, revision: score_module.Revision) -> bytes:
        """The revision's file as it was imported."""
        return await self.read(f"{revision_prefix(owner, revision)}/{revision.source_name}")

    async def read(self, key: str) -> bytes:
        """The bytes of the blob ``key``; ``errors.NotFound`` if it is missing."""
        with tempfile.TemporaryDirectory(prefix="mediatasks-score-") as folder:
            dest = Path(folder) / "blob"
            await self._blobs.get_file(key, dest)
            return await asyncio.to_thread(dest.read_bytes)

    async def _write(self, key: str, data: bytes) -> None:
        with tempfile.TemporaryDirectory(prefix="mediatasks-score-") as folder:
            staged = Path(folder) / "blob"
            await asyncio.to_thread(staged.write_bytes, data)
            await self._blobs.put_file(key, staged)
