"""Use cases: what the HTTP dialects and the command line ask of the engine.

Each function takes the stores it needs and plain values; none knows about HTTP.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mediatasks import assets, errors, fetch, tasks, taskstore, telemetry
from mediatasks import settings as settings_module
from mediatasks.blobstore import base as blobstore
from mediatasks.ipfs import asset_storage, gateway
from mediatasks.ipfs import pinning as ipfs_pinning
from mediatasks.media import limits
from mediatasks.worker.handlers import upload

__all__ = [
    "Bootstrap",
    "bootstrap_key",
    "bootstrap_key_path",
    "cancel_task",
    "create_clip",
    "delete_asset",
    "finish_upload",
    "import_from_url",
    "pending_upload",
    "request_upload",
    "retry_task",
]

log = logging.getLogger(__name__)

_BOOTSTRAP_FILE = "bootstrap-api-key"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Bootstrap:
    """The key that the embedded shape prints at start-up."""

    project_id: str
    secret: str
    created: bool


def bootstrap_key_path(settings: settings_module.Settings) -> Path:
    """Where the bootstrap key of the configured task store is kept.

    The embedded shape's own SQLite file keeps ``data_dir/bootstrap-api-key``; any other store
    gets a file named after its URL (the password left out), so that trying the scaled shape
    in the same folder never overwrites the embedded shape's key.
    """
    if not settings.database_url:
        return settings.data_dir / _BOOTSTRAP_FILE
    scheme, _, rest = settings.database_url.partition("://")
    credentials, at, host = rest.rpartition("@")
    named = f"{scheme}://{credentials.split(':', 1)[0]}{at}{host}"
    digest = hashlib.sha256(named.encode()).hexdigest()[:12]
    return settings.data_dir / f"{_BOOTSTRAP_FILE}-{scheme.split('+')[0]}-{digest}"


async def bootstrap_key(store: taskstore.TaskStore, kept: Path) -> Bootstrap | None:
    """On a store with no project yet, create one with a key, and keep the key in ``kept``.

    Later starts read the key back from there (while it is not revoked) so that it can be
    printed again.  Returns ``None`` when projects exist and no usable kept key is found.
    """
    if kept.exists():
        secret = kept.read_text().strip()
        key = await store.authenticate(secret)
        if key is not None:
            return Bootstrap(project_id=key.project_id, secret=secret, created=False)
    if await store.list_projects():
        return None
    project = await store.create_project("default")
    _, secret = await store.create_api_key(project.id, "bootstrap")
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.touch(mode=0o600)
    kept.write_text(secret + "\n")
    return Bootstrap(project_id=project.id, secret=secret, created=True)


#: A URL imported again within this time returns the first import (Livepeer's rule).
DUPLICATE_IMPORT_WINDOW = timedelta(minutes=15)


def _upload_params(
    options: Mapping[str, Any], settings: settings_module.Settings
) -> dict[str, Any]:
    """The upload task's params from a request's options; what cannot be done is refused."""
    profiles = options.get("profiles")
    if profiles is not None and len(profiles) == 0:
        raise errors.InvalidInput("assets must have at least one profile")
    limits.check_profiles(profiles, limits.profile_limits(settings))
    if options.get("encryption") is not None:
        raise errors.InvalidInput(
            "encrypted uploads are not supported by this service: upload the file unencrypted"
        )
    if options.get("c2pa"):
        raise errors.InvalidInput("C2PA signing is not supported by this service")
    return {
        key: options[key]
        for key in ("profiles", "targetSegmentSizeSecs", "c2pa", "staticMp4")
        if options.get(key) is not None
    }


def _creation_storage(
    settings: settings_module.Settings, storage: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """``storage`` of a new asset: ``storage.ipfs`` asks for an export to IPFS once the asset is
    ready (the store starts it in the transaction that makes the asset ready)."""
    if storage is None or "ipfs" not in storage:
        return {}
    spec = asset_storage.spec_of_request(storage["ipfs"])
    if spec is None:
        return {}
    if ipfs_pinning.pinner_for(settings) is None:
        raise errors.InvalidInput(ipfs_pinning.not_configured_message())
    return {"ipfs": {"spec": spec, "updatedAt": int(now.timestamp() * 1000)}}


def _creator_option(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options as kept: a bare ``creatorId`` becomes Livepeer's ``{type, value}`` object."""
    kept = {key: value for key, value in options.items() if key not in ("storage", "encryption")}
    creator = kept.get("creatorId")
    if isinstance(creator, str):
        kept["creatorId"] = {"type": "unverified", "value": creator}
    return kept


def _new_upload(
    settings: settings_module.Settings,
    *,
    project_id: str,
    name: str,
    source: Mapping[str, Any],
    params: Mapping[str, Any],
    options: Mapping[str, Any],
    storage: Mapping[str, Any] | None,
    direct: bool,
) -> tuple[taskstore.NewAsset, taskstore.NewTask]:
    """The asset and the upload task that fills it, as the store creates them."""
    asset_id = str(uuid.uuid4())
    playback_id = assets.new_playback_id(asset_id)
    task_params = dict(params)
    if direct:
        task_params["uploadedObjectKey"] = f"{upload.blob_prefix(playback_id)}/video"
    return (
        taskstore.NewAsset(
            id=asset_id,
            project_id=project_id,
            name=name,
            playback_id=playback_id,
            phase=assets.AssetPhase.UPLOADING if direct else assets.AssetPhase.WAITING,
            source=dict(source),
            options=_creator_option(options),
            storage=_creation_storage(settings, storage, datetime.now(UTC)),
        ),
        taskstore.NewTask(
            project_id=project_id,
            type=tasks.TaskType.UPLOAD,
            params=task_params,
            phase=tasks.Phase.PENDING if direct else tasks.Phase.WAITING,
            max_retries=settings.max_retries,
            output_asset_id=asset_id,
        ),
    )


async def import_from_url(
    store: taskstore.TaskStore,
    settings: settings_module.Settings,
    *,
    project_id: str,
    name: str,
    url: str,
    options: Mapping[str, Any],
    storage: Mapping[str, Any] | None = None,
) -> tuple[assets.Asset, tasks.Task, bool]:
    """Create an asset from a URL and the upload task that fills it.

    ``ipfs://`` and ``ar://`` URLs are read through the configured gateways: the task fetches
    the gateway URL, which ``source.gatewayUrl`` shows.  The same URL imported again by the same
    project within 15 minutes, while the first import is still under way, returns that import
    instead; the last value is whether it is new.  ``storage`` with ``ipfs`` exports the asset to
    IPFS once it is ready.
    """
    fetched = gateway.http_url(url, settings)
    fetch.check_url(fetched, allow_private=settings.allow_private_urls)
    params = {"url": fetched, **_upload_params(options, settings)}
    source = {"type": "url", "url": url}
    if fetched != url:
        source["gatewayUrl"] = fetched
    new_asset, new_task = _new_upload(
        settings,
        project_id=project_id,
        name=name,
        source=source,
        params=params,
        options=options,
        storage=storage,
        direct=False,
    )
    since = datetime.now(UTC) - DUPLICATE_IMPORT_WINDOW
    return await store.create_url_import(new_asset, new_task, url=url, since=since)


async def request_upload(
    store: taskstore.TaskStore,
    settings: settings_module.Settings,
    *,
    project_id: str,
    name: str,
    options: Mapping[str, Any],
    storage: Mapping[str, Any] | None = None,
) -> tuple[assets.Asset, tasks.Task]:
    """Create an asset whose bytes the client will send; its task waits for them (pending)."""
    new_asset, new_task = _new_upload(
        settings,
        project_id=project_id,
        name=name,
        source={"type": "directUpload"},
        params=_upload_params(options, settings),
        options=options,
        storage=storage,
        direct=True,
    )
    return await store.create_asset(new_asset, new_task)


async def pending_upload(
    store: taskstore.TaskStore, *, project_id: str, asset_id: str
) -> tuple[assets.Asset, tasks.Task]:
    """An asset of ``request_upload`` whose bytes have not all arrived, and its task: a client
    that lost its upload (a reloaded page) goes on with it rather than asking for a new one.

    ``NotFound`` if the asset is missing, deleted or in another project; ``Conflict`` once its
    upload is over (every byte arrived, or its task was cancelled).
    """
    asset = await store.get_asset(asset_id, project_id)
    task = await store.task_of_asset(asset.id)
    if (
        asset.phase is not assets.AssetPhase.UPLOADING
        or task is None
        or task.phase is not tasks.Phase.PENDING
    ):
        raise errors.Conflict(f"asset {asset.id} is no longer waiting for its upload")
    return asset, task


#: A clip may end this much past its asset's measured duration (container rounding).
_CLIP_SLACK_MS = 50


async def create_clip(
    store: taskstore.TaskStore,
    settings: settings_module.Settings,
    *,
    project_id: str,
    playback_id: str,
    start_ms: float,
    end_ms: float | None,
    name: str | None,
) -> tuple[assets.Asset, tasks.Task]:
    """Cut ``[start_ms, end_ms]`` (from the start of the asset) into a new asset of its own.

    Livepeer clips live streams by wall-clock time; this service has no streams, so a clip
    takes an asset's playback id and milliseconds from that asset's start.  Without ``end_ms``
    the clip runs to the end of the asset.
    """
    parent = await store.asset_by_playback_id(playback_id, project_id)
    if parent.phase is not assets.AssetPhase.READY or "source" not in parent.media:
        raise errors.InvalidInput("the asset to clip is not ready")
    duration_ms = float(parent.media.get("videoSpec", {}).get("duration", 0)) * 1000
    if end_ms is None:
        end_ms = duration_ms
    if end_ms <= start_ms:
        raise errors.InvalidInput("endTime must occur after startTime")
    if start_ms < 0 or end_ms > duration_ms + _CLIP_SLACK_MS:
        range_text = f"[{start_ms:g}, {end_ms:g}] ms"
        raise errors.InvalidInput(
            f"the clip {range_text} is outside the asset (0 to {duration_ms:.0f} ms)"
        )
    end_ms = min(end_ms, duration_ms)
    asset_id = str(uuid.uuid4())
    new_playback_id = assets.new_playback_id(asset_id)
    strategy = {"playbackId": playback_id, "startTime": start_ms, "endTime": end_ms}
    return await store.create_asset(
        taskstore.NewAsset(
            id=asset_id,
            project_id=project_id,
            name=name or f"clip-{new_playback_id}",
            playback_id=new_playback_id,
            phase=assets.AssetPhase.WAITING,
            source={"type": "clip", "playbackId": playback_id, "assetId": parent.id},
            # A clip of a gated asset is gated the same way: it shows the same pictures.
            options={"staticMp4": True, **_policy_of(parent)},
        ),
        taskstore.NewTask(
            project_id=project_id,
            type=tasks.TaskType.CLIP,
            params={"clipStrategy": strategy, "uploadedObjectKey": parent.media["source"]},
            max_retries=settings.max_retries,
            input_asset_id=parent.id,
            output_asset_id=asset_id,
        ),
    )


def _policy_of(asset: assets.Asset) -> dict[str, Any]:
    policy = asset.options.get("playbackPolicy")
    return {"playbackPolicy": policy} if policy else {}


async def finish_upload(
    store: taskstore.TaskStore, blobs: blobstore.BlobStore, task: tasks.Task, received: Path
) -> tasks.Task:
    """The last byte arrived: keep the file where the task reads it, and schedule the task."""
    await blobs.put_file(str(task.params["uploadedObjectKey"]), received)
    return await store.schedule(task.id)


async def cancel_task(store: taskstore.TaskStore, task_id: str, project_id: str) -> tasks.Task:
    """Cancel a task.  A running one is stopped by its worker within a second or two."""
    cancelled = await store.cancel(task_id, project_id)
    telemetry.task_cancelled(cancelled)
    return cancelled


async def retry_task(store: taskstore.TaskStore, task_id: str, project_id: str) -> tasks.Task:
    """Run a failed or cancelled task again (a manual retry).

    The task goes back to ``waiting`` with its automatic retries (and rescues) reset, so it has
    its whole retry budget again; its next claim is a new attempt, numbered after the earlier
    ones, which its timeline keeps.  The asset it fills goes back to ``waiting`` at once, its
    error cleared, and then follows the task as the first run did:
    ``processing``, then ``ready`` or ``failed``; an asset being exported shows the export's
    new run in its ``storage``.  A task whose asset was deleted is not retried
    (``InvalidTransition``): a deleted asset never comes back.
    """
    retried = await store.retry(task_id, project_id)
    telemetry.task_requeued(retried)
    return retried


async def delete_asset(
    store: taskstore.TaskStore, blobs: blobstore.BlobStore, asset_id: str, project_id: str
) -> assets.Asset:
    """Delete an asset and its media; its unfinished tasks are cancelled."""
    asset = await store.delete_asset(asset_id, project_id)
    removed = await blobs.delete_prefix(upload.blob_prefix(asset.playback_id))
    log.info("deleted asset %s and %d media file(s)", asset.id, removed)
    return asset
