"""A blob store in a dictionary: the fake for unit tests of the worker and the API.

It passes the same contract suite as the real backends, including the rules that come from file
systems (a key cannot be both a file and a folder), so code tested against it behaves the same on
disk.  The local files it reads and writes are still real files, handled in threads.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

from mediatasks import errors
from mediatasks.blobstore import base

__all__ = ["MemoryBlobStore"]


class MemoryBlobStore:
    """Published media kept in memory, lost when the object is."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"MemoryBlobStore(<{len(self._blobs)} keys>)"

    async def put_file(self, key: str, path: Path) -> None:
        """Store a copy of ``path`` as ``key``; see :meth:`BlobStore.put_file`."""
        base.check_key(key)
        data = await asyncio.to_thread(Path(path).read_bytes)
        self._store(key, data)

    async def move_file(self, key: str, path: Path) -> None:
        """Store ``path`` as ``key`` and remove it; see :meth:`BlobStore.move_file`."""
        await self.put_file(key, path)
        await asyncio.to_thread(Path(path).unlink)

    async def put_tree(self, prefix: str, directory: Path) -> list[str]:
        """Publish ``directory`` under ``prefix``; see :meth:`BlobStore.put_tree`."""
        files = await asyncio.to_thread(base.staged_files, prefix, Path(directory))
        for key, source in files:
            self._store(key, await asyncio.to_thread(source.read_bytes))
        return sorted(key for key, _ in files)

    async def get_file(self, key: str, dest: Path) -> None:
        """Copy ``key`` to ``dest``; raise ``errors.NotFound`` if it is missing."""
        data = self._get(key)
        await asyncio.to_thread(_write_file, Path(dest), data)

    async def exists(self, key: str) -> bool:
        """Whether ``key`` is a stored file."""
        return base.check_key(key) in self._blobs

    async def size_bytes(self, key: str) -> int:
        """The size of ``key``; raise ``errors.NotFound`` if it is missing."""
        return len(self._get(key))

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key in the folder ``prefix`` (all keys for ``""``), sorted."""
        return sorted(self._in_folder(base.check_prefix(prefix)))

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key in the folder ``prefix`` and count them."""
        folder = base.check_prefix(prefix)
        if not folder:
            raise errors.InvalidInput("refusing to delete every key: name a prefix")
        keys = self._in_folder(folder)
        for key in keys:
            del self._blobs[key]
        return len(keys)

    def local_path(self, key: str) -> None:
        """Always ``None``: nothing here is a file a web server could serve."""
        base.check_key(key)

    async def ping(self) -> None:
        """Always there."""

    async def close(self) -> None:
        """Nothing to release (the keys stay, like files in a folder)."""

    # -- helpers ------------------------------------------------------------------------------

    def _get(self, key: str) -> bytes:
        try:
            return self._blobs[base.check_key(key)]
        except KeyError:
            raise errors.NotFound(f"no such blob key: {key}") from None

    def _in_folder(self, folder: str) -> list[str]:
        if not folder:
            return list(self._blobs)
        return [key for key in self._blobs if key.startswith(f"{folder}/")]

    def _store(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, refusing what a file system would refuse."""
        segments = base.check_key(key).split("/")
        for end in range(1, len(segments)):
            if "/".join(segments[:end]) in self._blobs:
                raise errors.Conflict(
                    f"blob key {key!r} is inside a key that is a file, not a folder"
                )
        if self._in_folder(key):
            raise errors.Conflict(f"blob key {key!r} is a folder of other keys")
        self._blobs[key] = data


def _write_file(dest: Path, data: bytes) -> None:
    """Write ``dest`` through a temporary file, as the local backend does."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.part")
    try:
        temp.write_bytes(data)
        os.replace(temp, dest)
    finally:
        temp.unlink(missing_ok=True)
