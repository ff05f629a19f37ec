"""The CID that ``ipfs add --cid-version=1`` gives a file, computed here without an IPFS node.

Kubo's defaults with ``--cid-version=1`` make a UnixFS file DAG this way:

* the bytes are cut into fixed-size chunks of :data:`CHUNK_SIZE` (262,144) bytes, the last one
  shorter;
* each chunk is a *raw leaf* (``--raw-leaves`` is implied by CIDv1): its block is the chunk itself,
  and its CID has the ``raw`` codec (0x55);
* a file of one chunk or less *is* that leaf (an empty file too: the leaf of zero bytes);
* otherwise leaves are grouped, in order, :data:`MAX_LINKS` (174) to a ``dag-pb`` node, those
  nodes 174 to a node of the level above, and so on until one node is left: the balanced layout,
  where only the last node of each level may be partly filled;
* a ``dag-pb`` node (codec 0x70) holds its links first (field 2: child CID, an empty name, the
  child's cumulative block size ``Tsize``), then its data (field 1): a UnixFS ``Data`` message
  ``{Type: File, filesize, blocksizes}``, where ``blocksizes`` lists the file bytes under each
  child.  Both messages are written in field-number order with proto2 encoding (``blocksizes`` is
  *not* packed), exactly as go-merkledag and go-unixfs write them;
* every CID is version 1 with a sha2-256 multihash, printed in lower-case base32 with the ``b``
  multibase prefix.

:class:`FileCid` takes the bytes in pieces of any size and keeps one partial node per level (at
most 174 links each), so a file of any size is hashed in constant memory.  The tests compare the
results with the reference JavaScript importer on files of 0 bytes to several levels of nodes.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from pathlib import Path
from typing import Final

from mediatasks import errors

__all__ = [
    "CHUNK_SIZE",
    "CODEC_DAG_PB",
    "CODEC_RAW",
    "MAX_LINKS",
    "FileCid",
    "bytes_cid",
    "cid_string",
    "file_cid",
]

#: Bytes per leaf: kubo's default chunker, ``size-262144``.
CHUNK_SIZE: Final = 262_144
#: Links per ``dag-pb`` node in kubo's balanced layout (``helpers.DefaultLinksPerBlock``).
MAX_LINKS: Final = 174
#: Multicodec of a raw leaf.
CODEC_RAW: Final = 0x55
#: Multicodec of a ``dag-pb`` node.
CODEC_DAG_PB: Final = 0x70

_SHA2_256: Final = 0x12
_UNIXFS_FILE: Final = 2
#: Bytes read from a file per call when hashing a path.
_READ_BYTES: Final = 4 * CHUNK_SIZE


def _varint(value: int) -> bytes:
    """Unsigned LEB128, as protobuf and multiformats write integers."""
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _field_bytes(number: int, value: bytes) -> bytes:
    return _varint((number << 3) | 2) + _varint(len(value)) + value


def _cid_bytes(codec: int, block: bytes) -> bytes:
    """The binary CIDv1 of ``block``: version, codec, then the sha2-256 multihash."""
    digest = hashlib.sha256(block).digest()
    return _varint(1) + _varint(codec) + _varint(_SHA2_256) + _varint(len(digest)) + digest


def cid_string(cid: bytes) -> str:
    """A binary CID in the base32 multibase form (``b`` and lower-case RFC 4648, no padding)."""
    return "b" + base64.b32encode(cid).decode("ascii").lower().rstrip("=")


@dataclasses.dataclass(frozen=True)
class _Link:
    """A child as its parent links it."""

    cid: bytes
    #: The child's block plus every block under it (``Tsize``).
    tree_size: int
    #: File bytes under the child (its entry in the parent's ``blocksizes``).
    file_size: int


def _node(children: list[_Link]) -> _Link:
    """The ``dag-pb`` node over ``children``, as a link to it."""
    file_size = sum(child.file_size for child in children)
    unixfs = (
        _field_varint(1, _UNIXFS_FILE)
        + _field_varint(3, file_size)
        + b"".join(_field_varint(4, child.file_size) for child in children)
    )
    block = bytearray()
    for child in children:
        link = _field_bytes(1, child.cid) + _field_bytes(2, b"") + _field_varint(3, child.tree_size)
        block += _field_bytes(2, link)
    block += _field_bytes(1, unixfs)
    return _Link(
        cid=_cid_bytes(CODEC_DAG_PB, bytes(block)),
        tree_size=len(block) + sum(child.tree_size for child in children),
        file_size=file_size,
    )


class FileCid:
    """The CID of a file fed in pieces of any size: ``update()`` as often as needed, then
    :meth:`cid`."""

    def __init__(self, *, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> None:
        # Other values give what ``ipfs add --chunker=size-<chunk_size>`` would (kubo fixes the
        # links per node); the tests use small ones to build deep trees from small files.
        if chunk_size < 1 or max_links < 2:
            raise errors.InvalidInput("chunk_size must be at least 1 and max_links at least 2")
        self._chunk_size = chunk_size
        self._max_links = max_links
        self._pending = bytearray()
        #: ``_levels[0]`` holds leaves not yet under a node, ``_levels[1]`` nodes over leaves, ...
        self._levels: list[list[_Link]] = [[]]
        self._size_bytes = 0
        self._result: str | None = None

    @property
    def size_bytes(self) -> int:
        """Bytes fed so far."""
        return self._size_bytes

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next bytes of the file."""
        if self._result is not None:
            raise errors.InvalidInput("cid() was already called: a FileCid takes no more bytes")
        self._size_bytes += len(data)
        self._pending += data
        size = self._chunk_size
        if len(self._pending) < size:
            return
        whole = len(self._pending) - len(self._pending) % size
        view = memoryview(self._pending)
        for start in range(0, whole, size):
            self._add_leaf(bytes(view[start : start + size]))
        view.release()
        del self._pending[:whole]

    def _add_leaf(self, chunk: bytes) -> None:
        self._add(
            0, _Link(cid=_cid_bytes(CODEC_RAW, chunk), tree_size=len(chunk), file_size=len(chunk))
        )

    def _add(self, level: int, link: _Link) -> None:
        if level == len(self._levels):
            self._levels.append([])
        entries = self._levels[level]
        entries.append(link)
        if len(entries) == self._max_links:
            self._levels[level] = []
            self._add(level + 1, _node(entries))

    def cid(self) -> str:
        """The CID of everything fed; feeding more afterwards is an error."""
        if self._result is None:
            if self._pending or self._size_bytes == 0:
                self._add_leaf(bytes(self._pending))
                self._pending.clear()
            self._result = cid_string(self._root().cid)
        return self._result

    def _root(self) -> _Link:
        """Close the partial node of each level, bottom up, until one link is left on top."""
        level = 0
        while True:
            entries = self._levels[level]
            top = level == len(self._levels) - 1
            if top and len(entries) == 1:
                return entries[0]
            if entries:
                self._levels[level] = []
                if top:
                    self._levels.append([])
                self._levels[level + 1].append(_node(entries))
            level += 1


def bytes_cid(data: bytes) -> str:
    """The CID of ``data`` as a file."""
    hasher = FileCid()
    hasher.update(data)
    return hasher.cid()


def file_cid(path: Path) -> str:
    """The CID of the file at ``path`` (blocking: run it in a thread)."""
    hasher = FileCid()
    with path.open("rb") as file:
        while block := file.read(_READ_BYTES):
            hasher.update(block)
    return hasher.cid()
