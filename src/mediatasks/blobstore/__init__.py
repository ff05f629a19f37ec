"""Media storage ("blobs"): the published files of assets and tasks, by key.

Not to be confused with :mod:`mediatasks.taskstore`, the database of tasks.  Pick a backend with
:func:`open_blob_store`:

======================================  ==========================================================
``/srv/media``                          a local folder (a relative path is taken from the current
                                        folder)
``file:///srv/media``                   the same, as a URL
``memory://``                           a dictionary, for tests
``s3://bucket/prefix?endpoint=URL``     an S3-compatible bucket (needs the ``s3`` extra, boto3);
                                        see :mod:`mediatasks.blobstore.s3`
``s3+https://KEY:SECRET@host/bucket``   the same, as Livepeer writes object store URLs
======================================  ==========================================================
"""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Final

from mediatasks import errors
from mediatasks import settings as settings_module
from mediatasks.blobstore.base import BlobStore, check_key, check_prefix
from mediatasks.blobstore.local import LocalBlobStore
from mediatasks.blobstore.memory import MemoryBlobStore

if TYPE_CHECKING:
    from mediatasks.blobstore.s3 import S3Config

__all__ = [
    "BlobStore",
    "LocalBlobStore",
    "MemoryBlobStore",
    "check_key",
    "check_prefix",
    "open_blob_store",
    "open_configured",
]

#: A URL scheme; one letter is left out, as ``C:`` starts a Windows path.
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")
_CHOICES: Final = "use a folder path, file:///path, s3://bucket/prefix or memory://"


def open_blob_store(url_or_path: str, *, s3_defaults: S3Config | None = None) -> BlobStore:
    """Return the blob store that ``url_or_path`` names; raise ``errors.ConfigurationError``.

    ``s3_defaults`` gives an S3 location what its URL leaves out (endpoint, region,
    credentials).  Opening does no I/O: a local folder is created by the first write, an S3
    client by the first request.
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
    if scheme in ("s3", "s3+http", "s3+https"):
        try:
            from mediatasks.blobstore import s3  # boto3 comes with the optional "s3" extra
        except ImportError as exc:
            raise errors.ConfigurationError(
                "S3 blob stores need boto3: pip install 'mediatasks[s3]'"
            ) from exc
        return s3.S3BlobStore.at(s3.parse_location(value, s3_defaults))
    raise errors.ConfigurationError(f"unsupported blob store URL scheme {scheme!r}: {_CHOICES}")


def open_configured(settings: settings_module.Settings) -> BlobStore:
    """The service's blob store: ``blob_store_url`` (with the ``s3_*`` settings), else the folder
    ``data_dir/media``."""
    location = settings.blob_store_url.strip() or str(settings.media_dir.resolve())
    defaults = None
    if location.lower().startswith("s3"):
        try:
            from mediatasks.blobstore import s3
        except ImportError as exc:
            raise errors.ConfigurationError(
                "S3 blob stores need boto3: pip install 'mediatasks[s3]'"
            ) from exc
        defaults = s3.S3Config(
            endpoint_url=settings.s3_endpoint_url or None,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id or None,
            secret_access_key=settings.s3_secret_access_key or None,
        )
    return open_blob_store(location, s3_defaults=defaults)


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
