"""Use cases: what the HTTP dialects and the command line ask of the engine.

Each function takes the stores it needs and plain values; none knows about HTTP.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mediatasks import assets, errors, fetch, tasks, taskstore
from mediatasks import settings as settings_module
from mediatasks.blobstore import base as blobstore
from mediatasks.worker.handlers import upload

__all__ = [
    "Bootstrap",
    "bootstrap_key",
    "cancel_task",
    "delete_asset",
    "import_from_url",
]

log = logging.getLogger(__name__)

_BOOTSTRAP_FILE = "bootstrap-api-key"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Bootstrap:
    """The key that the embedded shape prints at start-up."""

    project_id: str
    secret: str
    created: bool


async def bootstrap_key(store: taskstore.TaskStore, data_dir: Path) -> Bootstrap | None:
    """On a store with no project yet, create one with a key, and keep the key in ``data_dir``.

    Later starts read the key back from there (while it is not revoked) so that it can be
    printed again.  Returns ``None`` when projects exist and no usable kept key is found.
    """
    kept = data_dir / _BOOTSTRAP_FILE
    if kept.exists():
        secret = kept.read_text().strip()
        key = await store.authenticate(secret)
        if key is not None:
            return Bootstrap(project_id=key.project_id, secret=secret, created=False)
    if await store.list_projects():
        return None
    project = await store.create_project("default")
    _, secret = await store.create_api_key(project.id, "bootstrap")
    data_dir.mkdir(parents=True, exist_ok=True)
    kept.touch(mode=0o600)
    kept.write_text(secret + "\n")
    return Bootstrap(project_id=project.id, secret=secret, created=True)


async def import_from_url(
    store: taskstore.TaskStore,
    settings: settings_module.Settings,
    *,
    project_id: str,
    name: str,
    url: str,
    options: Mapping[str, Any],
) -> tuple[assets.Asset, tasks.Task]:
    """Create an asset from a URL and the upload task that fills it."""
    fetch.check_url(url, allow_private=settings.allow_private_urls)
    profiles = options.get("profiles")
    if profiles is not None and len(profiles) == 0:
        raise errors.InvalidInput("assets must have at least one profile")
    asset_id = str(uuid.uuid4())
    params: dict[str, Any] = {"url": url}
    for key in ("profiles", "targetSegmentSizeSecs", "c2pa", "encryption"):
        if options.get(key) is not None:
            params[key] = options[key]
    return await store.create_asset(
        taskstore.NewAsset(
            id=asset_id,
            project_id=project_id,
            name=name,
            playback_id=assets.new_playback_id(asset_id),
            phase=assets.AssetPhase.WAITING,
            source={"type": "url", "url": url},
            options=dict(options),
        ),
        taskstore.NewTask(
            project_id=project_id,
            type=tasks.TaskType.UPLOAD,
            params=params,
            max_retries=settings.max_retries,
            output_asset_id=asset_id,
        ),
    )


async def cancel_task(store: taskstore.TaskStore, task_id: str, project_id: str) -> tasks.Task:
    """Cancel a task.  A running one is stopped by its worker within a second or two."""
    return await store.cancel(task_id, project_id)


async def delete_asset(
    store: taskstore.TaskStore, blobs: blobstore.BlobStore, asset_id: str, project_id: str
) -> assets.Asset:
    """Delete an asset and its media; its unfinished tasks are cancelled."""
    asset = await store.delete_asset(asset_id, project_id)
    removed = await blobs.delete_prefix(upload.blob_prefix(asset.playback_id))
    log.info("deleted asset %s and %d media file(s)", asset.id, removed)
    return asset
