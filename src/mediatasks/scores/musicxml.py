"""MusicXML and compressed MusicXML (MXL): parse and check, list the parts, select parts.

Only ``score-partwise`` documents are taken (what every notation program writes by default).
Parsing goes through defusedxml (expat underneath), which never fetches external entities or
DTDs and refuses any document that declares entities of its own, whatever its encoding (UTF-8 or
UTF-16, with or without a byte order mark; expat reads no UTF-32 at all), so no entity expansion
can blow up.  A stored revision keeps the MusicXML normalized: re-serialized as UTF-8 without its
DOCTYPE, which is what rendering and the ``xml`` download read.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import posixpath
import zipfile
from collections.abc import Collection
from typing import Final
from xml.etree import ElementTree

import defusedxml
from defusedxml import ElementTree as SafeElementTree

from mediatasks import errors
from mediatasks.scores import score

__all__ = [
    "MAX_XML_BYTES",
    "MXL_MEDIA_TYPE",
    "Summary",
    "pack_mxl",
    "parse",
    "select_parts",
    "serialize",
    "summarize",
    "unpack_mxl",
]

#: The largest MusicXML that an MXL archive may unpack to.
MAX_XML_BYTES: Final = 32 * 1024**2
#: The media type of MXL, also the content of its ``mimetype`` member.
MXL_MEDIA_TYPE: Final = "application/vnd.recordare.musicxml"
_CONTAINER: Final = "META-INF/container.xml"
_DEFAULT_TITLE_TAGS: Final = ("work/work-title", "movement-title")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Summary:
    """What a MusicXML document says about itself."""

    title: str | None
    composer: str | None
    parts: tuple[score.Part, ...]
    #: Notes with a pitch (or an unpitched percussion note), rests excluded.
    note_count: int


def parse(data: bytes) -> ElementTree.Element:
    """The root ``score-partwise`` element of ``data``; ``errors.InvalidInput`` if it is not one."""
    if not data.strip():
        raise errors.InvalidInput("the score is empty")
    try:
        root = _safe_parse(data)
    except defusedxml.DefusedXmlException as exc:
        raise errors.InvalidInput(
            "MusicXML documents that declare XML entities are not accepted"
        ) from exc
    except ElementTree.ParseError as exc:
        raise errors.InvalidInput(f"the MusicXML is not well-formed XML: {exc}") from exc
    tag = _local(root.tag)
    if tag == "score-timewise":
        raise errors.InvalidInput(
            "score-timewise MusicXML is not supported: export the score as score-partwise"
        )
    if tag != "score-partwise":
        raise errors.InvalidInput(
            f"this XML document is not MusicXML: its root element is <{tag}>, not <score-partwise>"
        )
    return root


def _safe_parse(data: bytes) -> ElementTree.Element:
    """``data`` parsed, refusing entity declarations (``EntitiesForbidden``) and external
    references; a DOCTYPE alone (which MusicXML files have) is fine."""
    root: ElementTree.Element = SafeElementTree.fromstring(
        data, forbid_dtd=False, forbid_entities=True, forbid_external=True
    )
    return root


def summarize(root: ElementTree.Element) -> Summary:
    """The title, composer, parts and note count of a parsed ``score-partwise``.

    Raises ``errors.InvalidInput`` when the document has no part, a part with no music, or music
    for a part that the part list does not declare.
    """
    part_list = root.find("part-list")
    declared = [] if part_list is None else part_list.findall("score-part")
    if not declared:
        raise errors.InvalidInput("the score has no parts: its <part-list> declares none")
    unpitched = {
        part.get("id", "")
        for part in root.findall("part")
        if part.find("measure/note/unpitched") is not None
    }
    parts = []
    seen: set[str] = set()
    for element in declared:
        part_id = element.get("id", "").strip()
        if not part_id or part_id in seen:
            raise errors.InvalidInput("every <score-part> needs an id of its own")
        seen.add(part_id)
        parts.append(_part(element, part_id, percussion=part_id in unpitched))
    music_ids = {part.get("id", "") for part in root.findall("part")}
    undeclared = music_ids - seen
    if undeclared:
        raise errors.InvalidInput(
            f"the score has music for part {sorted(undeclared)[0]!r}, "
            "which its <part-list> does not declare"
        )
    notes = sum(
        1
        for note in root.iterfind("part/measure/note")
        if note.find("pitch") is not None or note.find("unpitched") is not None
    )
    return Summary(
        title=_title(root),
        composer=_text(root.find("identification/creator[@type='composer']")),
        parts=tuple(parts),
        note_count=notes,
    )


def serialize(root: ElementTree.Element) -> bytes:
    """The document as UTF-8 MusicXML (with an XML declaration, without a DOCTYPE)."""
    body = ElementTree.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode()


def select_parts(root: ElementTree.Element, part_ids: Collection[str]) -> ElementTree.Element:
    """A copy of the document with only the parts ``part_ids`` (their declaration and music)."""
    wanted = set(part_ids)
    kept = copy.deepcopy(root)
    part_list = kept.find("part-list")
    if part_list is not None:
        for element in list(part_list):
            if _local(element.tag) == "score-part" and element.get("id") not in wanted:
                part_list.remove(element)
    for element in kept.findall("part"):
        if element.get("id") not in wanted:
            kept.remove(element)
    return kept


def unpack_mxl(data: bytes) -> bytes:
    """The MusicXML inside an MXL archive; ``errors.InvalidInput`` if there is none."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise errors.InvalidInput("the compressed MusicXML (.mxl) is not a valid zip") from exc
    with archive:
        names = set(archive.namelist())
        target = _rootfile(archive) if _CONTAINER in names else None
        if target is None:
            candidates = sorted(
                name
                for name in names
                if not name.startswith("META-INF/") and name.lower().endswith((".xml", ".musicxml"))
            )
            if not candidates:
                raise errors.InvalidInput("the .mxl archive holds no MusicXML file")
            target = candidates[0]
        if target not in names:
            raise errors.InvalidInput(f"the .mxl archive names {target!r}, which it lacks")
        info = archive.getinfo(target)
        if info.file_size > MAX_XML_BYTES:
            raise errors.InvalidInput(
                f"the MusicXML in the .mxl archive is {info.file_size / 1024**2:.0f} MiB; "
                f"the limit is {MAX_XML_BYTES // 1024**2} MiB"
            )
        try:
            return archive.read(target)
        except (zipfile.BadZipFile, ValueError, NotImplementedError, OSError) as exc:
            raise errors.InvalidInput(f"the .mxl archive cannot be read: {exc}") from exc


def pack_mxl(xml: bytes, name: str = "score.musicxml") -> bytes:
    """An MXL archive holding ``xml`` as ``name``."""
    container = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<container><rootfiles>"
        f'<rootfile full-path="{name}" media-type="{MXL_MEDIA_TYPE}+xml"/>'
        "</rootfiles></container>\n"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", MXL_MEDIA_TYPE, compress_type=zipfile.ZIP_STORED)
        archive.writestr(_CONTAINER, container, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr(name, xml, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _rootfile(archive: zipfile.ZipFile) -> str | None:
    try:
        container = _safe_parse(archive.read(_CONTAINER))
    except (
        ElementTree.ParseError,
        defusedxml.DefusedXmlException,
        zipfile.BadZipFile,
        ValueError,
        OSError,
    ):
        return None
    for element in container.iter():
        if _local(element.tag) == "rootfile" and element.get("full-path"):
            path = posixpath.normpath(element.get("full-path", ""))
            return path.lstrip("/")
    return None


def _part(element: ElementTree.Element, part_id: str, *, percussion: bool) -> score.Part:
    name = _text(element.find("part-name")) or _text(element.find("part-abbreviation")) or part_id
    program = 0
    midi = element.find("midi-instrument")
    if midi is not None:
        raw_program = _text(midi.find("midi-program"))
        if raw_program is not None and raw_program.isdigit():
            program = max(0, min(127, int(raw_program) - 1))  # MusicXML counts from 1
        percussion = percussion or _text(midi.find("midi-channel")) == "10"
    return score.Part(id=part_id, name=name, program=program, percussion=percussion)


def _title(root: ElementTree.Element) -> str | None:
    for path in _DEFAULT_TITLE_TAGS:
        found = _text(root.find(path))
        if found:
            return found
    for credit in root.findall("credit"):
        if _text(credit.find("credit-type")) == "title":
            found = _text(credit.find("credit-words"))
            if found:
                return found
    return None


def _text(element: ElementTree.Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return " ".join(element.text.split()) or None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
