"""Media storage ("blobs"): the published files of assets and tasks, by key.

Not to be confused with :mod:`mediatasks.taskstore`, the database of tasks.  Pick a backend with
:func:`open_blob_store`:

=====================  ==========================================================
``/srv/media``         a local folder (a relative path is taken from the current folder)
``file:///srv/media``  the same, as a URL
``memory://``          a dictionary, for tests
=====================  ==========================================================
"""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Final

from mediatasks import errors
from mediatasks.blobstore.base import BlobStore, check_key, check_prefix
from mediatasks.blobstore.local import LocalBlobStore
from mediatasks.blobstore.memory import MemoryBlobStore

__all__ = [
    "BlobStore",
    "LocalBlobStore",
    "MemoryBlobStore",
    "check_key",
    "check_prefix",
    "open_blob_store",
]

#: A URL scheme; one letter is left out, as ``C:`` starts a Windows path.
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")
_CHOICES: Final = "use a folder path, file:///path or memory://"


def open_blob_store(url_or_path: str) -> BlobStore:
    """Return the blob store that ``url_or_path`` names; raise ``errors.ConfigurationError``.

    Opening does no I/O: a local folder is created by the first write.
    """
    value = url_or_path.strip()
    if not value:
        raise errors.ConfigurationError(f"the blob store location is empty: {_CHOICES}")
    match = _SCHEME.match(value)
    if match is None:
        return LocalBlobStore(Path(value))
    scheme = match.group(1).lower()
    if scheme == "file":
        return LocalBlobStore(_file_url_path(value))
    if scheme == "memory":
        if value[match.end() :] not in ("", "//"):
            raise errors.ConfigurationError("a memory blob store takes no location: memory://")
        return MemoryBlobStore()
    if scheme.startswith("s3"):
        raise errors.ConfigurationError(f"S3 blob stores are not supported yet: {_CHOICES}")
    raise errors.ConfigurationError(f"unsupported blob store URL scheme {scheme!r}: {_CHOICES}")


def _file_url_path(url: str) -> Path:
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise errors.ConfigurationError(
            f"a file:// blob store must be on this machine: file:///path, not {url!r}"
        )
    if not parts.path.startswith("/"):
        raise errors.ConfigurationError(
            f"a file:// blob store needs an absolute path: file:///path, not {url!r}"
        )
    return Path(urllib.request.url2pathname(parts.path))
