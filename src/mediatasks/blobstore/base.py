"""The blob store contract: where published media live, addressed by ``/``-separated keys.

A key is a relative path such as ``hls/abcd1234/720p0/0.ts``.  The same rules hold in every
backend, so a key that works on a local folder works in a bucket too (see :func:`check_key`).

A prefix names a *folder* of keys: ``list_keys("hls/ab")`` finds ``hls/ab/index.m3u8`` but not
``hls/abc/index.m3u8``, and ``delete_prefix`` never removes a neighbour whose name merely starts
the same way.  For the same reason a key cannot be both a file and a folder: storing
``hls/ab/0.ts`` while ``hls/ab`` is a file (or the reverse) raises ``errors.Conflict``, as it must
on a file system.

Every backend passes ``tests/contract/test_blobstore_contract.py``; the in-memory fake included.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final, Protocol

from mediatasks import errors

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_SEGMENT_BYTES",
    "TEMP_PREFIX",
    "BlobStore",
    "check_key",
    "check_prefix",
    "staged_files",
]

#: Longest key, in UTF-8 bytes (the S3 limit).
MAX_KEY_BYTES: Final = 1024
#: Longest key segment, in UTF-8 bytes (the usual file name limit).
MAX_SEGMENT_BYTES: Final = 255
#: Segments starting with this are reserved for a backend's half-written files.
TEMP_PREFIX: Final = ".~tmp."
#: Manifest suffixes: players open these first, so a tree publishes them last.
_MANIFEST_SUFFIXES: Final = frozenset({".m3u8", ".mpd"})


class BlobStore(Protocol):
    """Published media files by key.  Each method raises ``errors.InvalidInput`` for a bad key."""

    async def put_file(self, key: str, path: Path) -> None:
        """Store a copy of the local file ``path`` as ``key``, replacing any earlier one.

        Readers see either the old content or the new, never a part of it.
        """
        ...

    async def move_file(self, key: str, path: Path) -> None:
        """Publish the local file ``path`` as ``key``, giving the file up (publish by rename).

        As :meth:`put_file`, but ``path`` is gone afterwards: a local folder renames it into
        place when it is on the same file system, so publishing a large file costs no copy.
        """
        ...

    async def put_tree(self, prefix: str, directory: Path) -> list[str]:
        """Publish every file under ``directory`` as ``prefix/<relative path>``; return the keys.

        Playlists and manifests are published after the files they list, deepest first, so a
        player that finds a playlist finds its segments too.  The keys come back sorted.  On a
        failure part of the tree may be published: the caller removes it with
        :meth:`delete_prefix`.  Symbolic links are refused (``errors.InvalidInput``), and a
        missing ``directory`` raises ``errors.NotFound``.  The staged files must not be changed
        in place afterwards (a backend may hard-link them); deleting them is fine.
        """
        ...

    async def get_file(self, key: str, dest: Path) -> None:
        """Copy ``key`` to the local file ``dest``; raise ``errors.NotFound`` if it is missing."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether ``key`` is a stored file (a folder of keys is not)."""
        ...

    async def size_bytes(self, key: str) -> int:
        """The size of ``key``; raise ``errors.NotFound`` if it is missing."""
        ...

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key in the folder ``prefix`` (all keys for ``""``), sorted."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key in the folder ``prefix`` and return how many were deleted.

        An empty prefix is refused: deleting everything is never what a caller means.
        """
        ...

    def local_path(self, key: str) -> Path | None:
        """A file system path that a web server can serve ``key`` from, or ``None``.

        Remote backends return ``None``.  The path is computed, not checked: it may not exist.
        """
        ...

    async def ping(self) -> None:
        """Return once the store answered: its folder or bucket is there and usable.

        ``errors.NotFound`` when the bucket does not exist, ``errors.ConfigurationError`` when
        it (or the folder) refuses us, ``errors.Unavailable`` when it does not answer.  For
        readiness and start-up checks: the caller bounds the wait.
        """
        ...

    async def close(self) -> None:
        """Release connections; calling it again does nothing."""
        ...


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid blob key, else raise ``errors.InvalidInput``."""
    if not key:
        raise errors.InvalidInput("blob key must not be empty")
    if key.startswith("/"):
        raise errors.InvalidInput(f"blob key must be a relative path: {key!r}")
    if "\\" in key:
        raise errors.InvalidInput(f"blob key must use '/' separators, not backslashes: {key!r}")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        raise errors.InvalidInput(f"blob key must not contain control characters: {key!r}")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise errors.InvalidInput(f"blob key is longer than {MAX_KEY_BYTES} bytes")
    for segment in key.split("/"):
        if not segment:
            raise errors.InvalidInput(f"blob key must not have empty segments: {key!r}")
        if segment in (".", ".."):
            raise errors.InvalidInput(f"blob key must not contain '.' or '..' segments: {key!r}")
        if segment.startswith(TEMP_PREFIX):
            raise errors.InvalidInput(f"blob key segments must not start with {TEMP_PREFIX!r}")
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise errors.InvalidInput(f"blob key segment is longer than {MAX_SEGMENT_BYTES} bytes")
    return key


def check_prefix(prefix: str) -> str:
    """Return the folder that ``prefix`` names: ``""`` (everything) or a valid key.

    One trailing ``/`` is accepted and dropped, so ``"hls/ab/"`` and ``"hls/ab"`` are the same.
    """
    if prefix in ("", "/"):
        return ""
    return check_key(prefix.removesuffix("/"))


def staged_files(prefix: str, directory: Path) -> list[tuple[str, Path]]:
    """The ``(key, path)`` pairs that publishing ``directory`` under ``prefix`` stores, in order.

    This walks the file system: backends call it in a thread.
    """
    folder = check_prefix(prefix)
    if not directory.is_dir():
        raise errors.NotFound(f"the folder to publish does not exist: {directory}")
    files: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(directory):
        current = Path(dirpath)
        for name in [*dirnames, *filenames]:
            if (current / name).is_symlink():
                raise errors.InvalidInput(f"refusing to publish the symbolic link {current / name}")
        for name in filenames:
            path = current / name
            if not path.is_file():
                raise errors.InvalidInput(f"refusing to publish {path}: not a regular file")
            relative = path.relative_to(directory).as_posix()
            files.append((check_key(f"{folder}/{relative}" if folder else relative), path))
    files.sort(key=_publish_order)
    return files


def _publish_order(item: tuple[str, Path]) -> tuple[bool, int, str]:
    key = item[0]
    is_manifest = os.path.splitext(key)[1].lower() in _MANIFEST_SUFFIXES
    return (is_manifest, -key.count("/"), key)
