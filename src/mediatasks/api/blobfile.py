"""A stored file as an HTTP response, for every face that hands out media (``/v2``, the pages)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from mediatasks import errors
from mediatasks.blobstore import base as blobstore

__all__ = ["blob_response"]


async def blob_response(
    blobs: blobstore.BlobStore, key: str, media_type: str, headers: Mapping[str, str]
) -> Response:
    """Stream a blob (with ranges): from its local file when it has one, else through a
    temporary copy removed once sent.  A missing blob raises ``errors.NotFound``."""
    path = blobs.local_path(key)
    if path is not None:
        if not await asyncio.to_thread(path.is_file):
            raise errors.NotFound(f"{key} is not stored")
        return FileResponse(path, media_type=media_type, headers=dict(headers))
    folder = tempfile.mkdtemp(prefix="mediatasks-download-")
    copy = Path(folder) / "blob"
    try:
        await blobs.get_file(key, copy)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    cleanup = BackgroundTask(shutil.rmtree, folder, ignore_errors=True)
    return FileResponse(copy, media_type=media_type, headers=dict(headers), background=cleanup)
