"""A blob store in a local folder: the embedded shape's media, served straight from disk.

A key maps to the file ``root/<key>``.  Writes go to a temporary file in the target's own folder
and are then renamed over the target (``os.replace``), so a web server reading the folder sees the
old file or the new one, never half of one; an interrupted write leaves a ``.~tmp.*`` file behind
that no listing shows and the next ``delete_prefix`` of its folder removes.  Files are not
``fsync``-ed: after a power cut a published file may be lost or empty, which re-running the task
repairs.

File system work runs in threads (``asyncio.to_thread``), one file at a time, so that cancelling a
caller stops the work after the file in progress.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import Final

from mediatasks import errors
from mediatasks.blobstore import base

__all__ = ["LocalBlobStore"]

#: Attempts to create a temporary file when a concurrent ``delete_prefix`` keeps removing its
#: (empty) folder between our ``mkdir`` and the file's creation.
_CREATE_ATTEMPTS: Final = 3


class LocalBlobStore:
    """Published media as files under ``root`` (created on the first write)."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self._root)!r})"

    @property
    def root(self) -> Path:
        """The folder that holds every key."""
        return self._root

    async def put_file(self, key: str, path: Path) -> None:
        """Store a copy of ``path`` as ``key``; see :meth:`BlobStore.put_file`."""
        target = self._path(key)
        await asyncio.to_thread(self._install, key, Path(path), target, link=False)

    async def move_file(self, key: str, path: Path) -> None:
        """Rename ``path`` to ``key`` (a copy across file systems); see
        :meth:`BlobStore.move_file`."""
        target = self._path(key)
        await asyncio.to_thread(self._install, key, Path(path), target, link=True)
        await asyncio.to_thread(Path(path).unlink, missing_ok=True)

    async def put_tree(self, prefix: str, directory: Path) -> list[str]:
        """Publish ``directory`` under ``prefix``, hard-linking where the file system allows.

        See :meth:`BlobStore.put_tree`.  A hard link costs no copy when the staging folder is on
        the same file system; otherwise (or where links are not supported) the file is copied.
        """
        files = await asyncio.to_thread(base.staged_files, prefix, Path(directory))
        for key, source in files:
            await asyncio.to_thread(self._install, key, source, self._path(key), link=True)
        return sorted(key for key, _ in files)

    async def get_file(self, key: str, dest: Path) -> None:
        """Copy ``key`` to ``dest`` (replacing it at once); see :meth:`BlobStore.get_file`."""
        source = self._path(key)
        await asyncio.to_thread(_copy_out, key, source, Path(dest))

    async def exists(self, key: str) -> bool:
        """Whether ``key`` is a stored file."""
        return await asyncio.to_thread(self._path(key).is_file)

    async def size_bytes(self, key: str) -> int:
        """The size of ``key``; raise ``errors.NotFound`` if it is missing."""
        return await asyncio.to_thread(_size_bytes, key, self._path(key))

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key in the folder ``prefix`` (all keys for ``""``), sorted."""
        return await asyncio.to_thread(self._list, self._folder(prefix))

    async def delete_prefix(self, prefix: str) -> int:
        """Delete the folder ``prefix`` and any folders it leaves empty; count the keys."""
        if not base.check_prefix(prefix):
            raise errors.InvalidInput("refusing to delete every key: name a prefix")
        return await asyncio.to_thread(self._delete, self._folder(prefix))

    def local_path(self, key: str) -> Path:
        """The file that holds ``key`` (which may not exist)."""
        return self._path(key)

    async def ping(self) -> None:
        """The folder (or, before the first write, the folder that will hold it) is writable."""
        await asyncio.to_thread(self._check_writable)

    async def close(self) -> None:
        """Nothing to release."""

    # -- helpers (the ones that touch the disk run in a thread) ------------------------------

    def _check_writable(self) -> None:
        folder = self._root
        while not folder.exists() and folder.parent != folder:
            folder = folder.parent  # created on the first write: its parent must take it
        if not folder.is_dir():
            raise errors.ConfigurationError(f"the media folder {self._root} is not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise errors.ConfigurationError(f"the media folder {self._root} is not writable")

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*base.check_key(key).split("/"))

    def _folder(self, prefix: str) -> Path:
        folder = base.check_prefix(prefix)
        return self._root.joinpath(*folder.split("/")) if folder else self._root

    def _install(self, key: str, source: Path, target: Path, *, link: bool) -> None:
        """Put ``source`` at ``target`` through a temporary file and a rename."""
        temp = target.with_name(f"{base.TEMP_PREFIX}{secrets.token_hex(8)}")
        for attempt in range(1, _CREATE_ATTEMPTS + 1):
            self._make_folder(key, target.parent)
            try:
                _link_or_copy(source, temp, link=link)
                break
            except FileNotFoundError:
                # Either the source is missing (the caller's error) or a concurrent delete_prefix
                # pruned the folder we just made: only the latter is worth another attempt.
                if attempt == _CREATE_ATTEMPTS or target.parent.is_dir():
                    raise
        try:
            os.replace(temp, target)
        except IsADirectoryError as exc:
            raise errors.Conflict(f"blob key {key!r} is a folder of other keys") from exc
        finally:
            # Normally gone; still there if the rename failed, or if temp and target were already
            # links to the same file (then rename does nothing at all).
            temp.unlink(missing_ok=True)

    def _make_folder(self, key: str, folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise errors.Conflict(
                f"blob key {key!r} is inside a key that is a file, not a folder"
            ) from exc

    def _list(self, folder: Path) -> list[str]:
        keys: list[str] = []
        for dirpath, _dirnames, filenames in os.walk(folder):
            relative = Path(dirpath).relative_to(self._root).as_posix()
            for name in filenames:
                if not name.startswith(base.TEMP_PREFIX):
                    keys.append(name if relative == "." else f"{relative}/{name}")
        return sorted(keys)

    def _delete(self, folder: Path) -> int:
        removed = 0
        for dirpath, dirnames, filenames in os.walk(folder, topdown=False):
            for name in filenames:
                try:
                    os.unlink(os.path.join(dirpath, name))
                except FileNotFoundError:  # deleted concurrently
                    continue
                if not name.startswith(base.TEMP_PREFIX):
                    removed += 1
            for name in dirnames:
                path = os.path.join(dirpath, name)
                if os.path.islink(path):
                    os.unlink(path)
                else:
                    _remove_empty_folder(Path(path))
        _remove_empty_folder(folder)
        parent = folder.parent
        while parent != self._root and parent.is_relative_to(self._root):
            if not _remove_empty_folder(parent):
                break
            parent = parent.parent
        return removed


def _link_or_copy(source: Path, temp: Path, *, link: bool) -> None:
    if link:
        try:
            os.link(source, temp)
            return
        except FileNotFoundError:
            raise
        except OSError:  # another file system (EXDEV), or one without hard links
            pass
    shutil.copyfile(source, temp)


def _copy_out(key: str, source: Path, dest: Path) -> None:
    try:
        reader = source.open("rb")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise errors.NotFound(f"no such blob key: {key}") from exc
    with reader:
        dest.parent.mkdir(parents=True, exist_ok=True)
        temp = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.part")
        try:
            with temp.open("wb") as writer:
                shutil.copyfileobj(reader, writer, 1024 * 1024)
            os.replace(temp, dest)
        finally:
            temp.unlink(missing_ok=True)


def _size_bytes(key: str, path: Path) -> int:
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise errors.NotFound(f"no such blob key: {key}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise errors.NotFound(f"no such blob key: {key}")
    return info.st_size


def _remove_empty_folder(folder: Path) -> bool:
    """Remove ``folder`` if it is an empty folder; say whether it is gone."""
    try:
        folder.rmdir()
    except FileNotFoundError:
        return True
    except OSError:  # not empty (a concurrent write), or not a folder
        return False
    return True
