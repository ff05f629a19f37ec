"""The score records: a ``Score`` with its ``Revision`` list, each revision with its ``Part`` list.

They are immutable and are kept as one JSON document per score (``library``).  Ids are 24
lowercase hex digits, like Flat's; anything else is not an id of ours, which lets callers refuse
it before it comes near a blob key.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from mediatasks import errors

__all__ = [
    "ID_PATTERN",
    "LAST",
    "PRIVACIES",
    "Part",
    "Revision",
    "Score",
    "SourceFormat",
    "instrument_id",
    "is_id",
    "new_id",
]

#: Score and revision ids.
ID_PATTERN: Final = re.compile(r"[0-9a-f]{24}")
#: The revision reference that means "the newest revision".
LAST: Final = "last"
#: Flat's privacy modes; a score keeps the one it was created with (nothing else reads it).
PRIVACIES: Final = frozenset({"public", "private", "organizationPublic", "privateLink"})

#: Flat-style ``{group}.{instrument}`` ids for the 16 General MIDI program families.
_GM_FAMILIES: Final = (
    "keyboards.piano",
    "pitched-percussion.mallets",
    "keyboards.organ",
    "guitars.guitar",
    "bass.bass",
    "strings.strings",
    "ensemble.ensemble",
    "brass.brass",
    "woodwinds.reeds",
    "woodwinds.pipes",
    "synths.lead",
    "synths.pad",
    "synths.effects",
    "world.ethnic",
    "percussion.percussive",
    "effects.sound-effects",
)
_DRUMS: Final = "drums.drum-set"


def new_id() -> str:
    """A new score or revision id: 24 hex digits (96 random bits)."""
    return secrets.token_hex(12)


def is_id(value: str) -> bool:
    """Whether ``value`` has the shape of our ids."""
    return ID_PATTERN.fullmatch(value) is not None


class SourceFormat(enum.StrEnum):
    """The format a revision was imported from."""

    #: Uncompressed MusicXML text.
    MUSICXML = "musicxml"
    #: Compressed MusicXML: a zip archive holding the MusicXML.
    MXL = "mxl"
    #: A Standard MIDI File.
    MIDI = "midi"

    @property
    def extension(self) -> str:
        """The file name extension of the stored source."""
        return {"musicxml": "musicxml", "mxl": "mxl", "midi": "mid"}[self.value]

    @property
    def label(self) -> str:
        """A readable name of the format."""
        return {"musicxml": "MusicXML", "mxl": "compressed MusicXML", "midi": "MIDI"}[self.value]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Part:
    """One part (one instrument's staff or staves) of a revision."""

    #: MusicXML's ``score-part/@id``; for MIDI ``P1``, ``P2``... in track order.
    id: str
    name: str
    #: General MIDI program, 0 to 127.
    program: int = 0
    #: Played on the percussion channel (General MIDI channel 10).
    percussion: bool = False
    #: For a MIDI source, the index of the track that holds this part.
    track: int | None = None

    def to_doc(self) -> dict[str, Any]:
        """The part as stored."""
        doc: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "program": self.program,
            "percussion": self.percussion,
        }
        if self.track is not None:
            doc["track"] = self.track
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Part:
        """The part from what ``to_doc`` stored."""
        return cls(
            id=str(doc["id"]),
            name=str(doc["name"]),
            program=int(doc.get("program", 0)),
            percussion=bool(doc.get("percussion", False)),
            track=None if doc.get("track") is None else int(doc["track"]),
        )


def instrument_id(part: Part) -> str:
    """A Flat-style instrument id (``keyboards.piano``) for ``part``."""
    if part.percussion:
        return _DRUMS
    return _GM_FAMILIES[max(0, min(127, part.program)) // 8]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Revision:
    """One version of a score's music."""

    id: str
    created_at: datetime
    source_format: SourceFormat
    parts: tuple[Part, ...]
    #: Bytes of the file as imported.
    source_size_bytes: int

    @property
    def source_name(self) -> str:
        """The stored file name of the imported source."""
        return f"source.{self.source_format.extension}"

    @property
    def is_midi(self) -> bool:
        """Whether the music is a MIDI file (else MusicXML, kept normalized)."""
        return self.source_format is SourceFormat.MIDI

    def select_parts(self, part_ids: Sequence[str] | None) -> tuple[Part, ...]:
        """The parts that ``part_ids`` names, in score order; all of them for none or ``[]``.

        Raises ``errors.InvalidInput`` for an id that is not a part of this revision.
        """
        if not part_ids:
            return self.parts
        known = {part.id for part in self.parts}
        unknown = [part_id for part_id in part_ids if part_id not in known]
        if unknown:
            listed = ", ".join(sorted(known))
            raise errors.InvalidInput(
                f"unknown part {unknown[0]!r}: the parts of revision {self.id} are {listed}"
            )
        wanted = set(part_ids)
        return tuple(part for part in self.parts if part.id in wanted)

    def to_doc(self) -> dict[str, Any]:
        """The revision as stored."""
        return {
            "id": self.id,
            "createdAt": self.created_at.isoformat(),
            "sourceFormat": str(self.source_format),
            "sourceSizeBytes": self.source_size_bytes,
            "parts": [part.to_doc() for part in self.parts],
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Revision:
        """The revision from what ``to_doc`` stored."""
        return cls(
            id=str(doc["id"]),
            created_at=datetime.fromisoformat(str(doc["createdAt"])).astimezone(UTC),
            source_format=SourceFormat(doc["sourceFormat"]),
            source_size_bytes=int(doc.get("sourceSizeBytes", 0)),
            parts=tuple(Part.from_doc(part) for part in doc.get("parts", ())),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Score:
    """A score of one project, with at least one revision (oldest first)."""

    id: str
    project_id: str
    title: str
    privacy: str
    created_at: datetime
    revisions: tuple[Revision, ...]
    composer: str | None = None

    @property
    def last_revision(self) -> Revision:
        """The newest revision."""
        return self.revisions[-1]

    @property
    def modified_at(self) -> datetime:
        """When the newest revision was made."""
        return self.last_revision.created_at

    def revision(self, ref: str) -> Revision:
        """The revision ``ref`` names (an id, or ``last``); ``errors.NotFound`` otherwise."""
        if ref == LAST:
            return self.last_revision
        for revision in self.revisions:
            if revision.id == ref:
                return revision
        raise errors.NotFound(f"score {self.id} has no revision {ref!r}")

    def evolve(self, **changes: Any) -> Score:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_doc(self) -> dict[str, Any]:
        """The score as stored (``score.json``)."""
        return {
            "id": self.id,
            "projectId": self.project_id,
            "title": self.title,
            "privacy": self.privacy,
            "composer": self.composer,
            "createdAt": self.created_at.isoformat(),
            "revisions": [revision.to_doc() for revision in self.revisions],
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Score:
        """The score from what ``to_doc`` stored."""
        return cls(
            id=str(doc["id"]),
            project_id=str(doc["projectId"]),
            title=str(doc["title"]),
            privacy=str(doc.get("privacy", "private")),
            composer=None if doc.get("composer") is None else str(doc["composer"]),
            created_at=datetime.fromisoformat(str(doc["createdAt"])).astimezone(UTC),
            revisions=tuple(Revision.from_doc(revision) for revision in doc["revisions"]),
        )
