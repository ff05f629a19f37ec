"""Is the service alive, is it ready, and can it start at all (the two pages are served by
``mediatasks.api.health``).

- ``GET /healthz``: the process answers HTTP (liveness: restart it when this fails).
- ``GET /readyz``: the task store and the media store each answered a ping within
  ``readiness_timeout_s``; otherwise 503, naming the part that did not (readiness: send it no
  traffic meanwhile).  The pings run side by side, so the answer never takes much longer than
  the timeout.
- ``preflight``: what ``serve`` and ``worker`` check before they start: the task store answers
  (and is migrated), the media store's bucket exists (created with ``s3_create_bucket``), and
  FFmpeg runs.  A failure raises ``StartupError`` with one line for the operator.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable
from typing import Final

from mediatasks import errors, taskstore
from mediatasks import settings as settings_module
from mediatasks.blobstore import base as blobstore
from mediatasks.media import ffmpeg

__all__ = ["StartupError", "check", "preflight"]

#: How long start-up waits for the task store and the bucket to answer.
STARTUP_TIMEOUT_S: Final = 15.0


class StartupError(Exception):
    """The service cannot start; the message says why, in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Readiness:
    """The outcome of one readiness check: ``"ok"`` or what went wrong, per part."""

    parts: dict[str, str]

    @property
    def ready(self) -> bool:
        return all(state == "ok" for state in self.parts.values())


async def _part(ping: Awaitable[None], timeout_s: float) -> str:
    try:
        async with asyncio.timeout(timeout_s):
            await ping
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except errors.MediaTasksError as exc:
        return exc.message
    return "ok"


async def check(
    store: taskstore.TaskStore, blobs: blobstore.BlobStore, *, timeout_s: float
) -> Readiness:
    """Ping both stores at once, each bounded by ``timeout_s``."""
    task_store, media_store = await asyncio.gather(
        _part(store.ping(), timeout_s), _part(blobs.ping(), timeout_s)
    )
    return Readiness(parts={"taskStore": task_store, "mediaStore": media_store})


async def preflight(
    settings: settings_module.Settings,
    store: taskstore.TaskStore,
    blobs: blobstore.BlobStore,
    *,
    timeout_s: float = STARTUP_TIMEOUT_S,
) -> list[int]:
    """Check what the service needs, and migrate the task store; the migrations applied.

    Raises ``StartupError`` naming the first thing that is wrong.
    """
    try:
        async with asyncio.timeout(timeout_s):
            await store.ping()
            applied = await store.migrate()
    except TimeoutError:
        raise StartupError(
            f"the task store did not answer within {timeout_s:g} s "
            f"({_store_name(settings.resolved_database_url)})"
        ) from None
    except errors.MediaTasksError as exc:
        raise StartupError(f"the task store cannot be used: {exc.message}") from None
    await _check_blobs(settings, blobs, timeout_s)
    try:
        binary = ffmpeg.ffmpeg_binary(settings.ffmpeg_path)
        await ffmpeg.ffmpeg_version(binary)
    except errors.ConfigurationError as exc:
        hint = " (MEDIATASKS_FFMPEG_PATH)" if settings.ffmpeg_path else ""
        raise StartupError(f"FFmpeg cannot run{hint}: {exc.message}") from None
    return applied


async def _check_blobs(
    settings: settings_module.Settings, blobs: blobstore.BlobStore, timeout_s: float
) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            try:
                await blobs.ping()
            except errors.NotFound as missing:
                create = getattr(blobs, "create_bucket", None)
                if not settings.s3_create_bucket or create is None:
                    raise StartupError(
                        f"{missing.message}: create it, or start with --create-bucket "
                        "(MEDIATASKS_S3_CREATE_BUCKET=true)"
                    ) from None
                await create()
                await blobs.ping()
    except TimeoutError:
        raise StartupError(f"the media store did not answer within {timeout_s:g} s") from None
    except errors.MediaTasksError as exc:
        raise StartupError(f"the media store cannot be used: {exc.message}") from None


def _store_name(url: str) -> str:
    """The store's URL without its password, for messages."""
    scheme, _, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        rest = f"{user}@{host}"
    return f"{scheme}://{rest}"
