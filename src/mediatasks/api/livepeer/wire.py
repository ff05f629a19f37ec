"""Tasks and assets in Livepeer's JSON shape (camelCase, Unix milliseconds).

The official SDK parses these strictly: ``status`` always carries ``phase`` and ``updatedAt``, a
completed upload's ``output.upload.assetSpec`` is a whole asset (``id``, ``name``, ``source``),
and credentials in URLs are masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mediatasks import assets, fetch, tasks

__all__ = [
    "PARAMS_KEY",
    "VISIBLE_TYPES",
    "asset_json",
    "eta",
    "ms",
    "public_params",
    "task_json",
]

#: The key under which each task type's params (and output) appear.
PARAMS_KEY: dict[str, str] = {
    tasks.TaskType.UPLOAD: "upload",
    tasks.TaskType.TRANSCODE_FILE: "transcode-file",
    tasks.TaskType.CLIP: "clip",
    tasks.TaskType.EXPORT: "export",
    tasks.TaskType.EXPORT_DATA: "exportData",
}


#: The task types this dialect shows: Livepeer's, and the test-only ``noop``.  Other dialects'
#: types (Flat's ``audio-export``) would break the official SDK, whose ``Task.type`` is an enum.
VISIBLE_TYPES: frozenset[str] = frozenset({*PARAMS_KEY, tasks.TaskType.NOOP})


def ms(moment: datetime) -> int:
    """Unix milliseconds."""
    return tasks.unix_ms(moment)


#: Fields (lower case) whose values are credentials wherever they appear: an export's Pinata
#: keys, and the headers of a custom export.
_SECRET_FIELDS = frozenset(
    {"jwt", "apikey", "apisecret", "authorization", "proxy-authorization", "cookie", "x-api-key"}
)
_MASK = "***"


def _mask(value: Any) -> Any:
    """Mask credentials in every URL found in ``value``, and the values of secret fields."""
    if isinstance(value, str):
        return fetch.redact_url(value) if "://" in value else value
    if isinstance(value, dict):
        return {
            k: _MASK if k.lower() in _SECRET_FIELDS and isinstance(v, str) else _mask(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def _pick(value: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """The ``keys`` of a mapping that are present; nothing when ``value`` is not a mapping."""
    if not isinstance(value, Mapping):
        return {}
    return {key: value[key] for key in keys if value.get(key) is not None}


def _export_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``export-task-params``; a custom export's header values are all masked (they are how a
    target authenticates), and Pinata credentials are write-only."""
    custom = params.get("custom")
    if isinstance(custom, Mapping):
        shown = _pick(custom, ("url", "method"))
        headers = custom.get("headers")
        if isinstance(headers, Mapping) and headers:
            shown["headers"] = dict.fromkeys(headers, _MASK)
        return {"custom": shown}
    return {"ipfs": _pick(params.get("ipfs"), ("nftMetadataTemplate", "nftMetadata"))}


def _transcode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    shown = _pick(params, ("profiles", "targetSegmentSizeSecs", "creatorId", "c2pa", "outputs"))
    for key in ("input", "storage"):
        if isinstance(params.get(key), Mapping):
            shown[key] = _pick(params[key], ("url",))
    return shown


def public_params(task: tasks.Task) -> dict[str, Any]:
    """A task's ``params`` as the spec's ``task.params`` has them, credentials masked.

    Only the fields that the spec names are shown: what the service keeps for itself (where an
    upload's bytes are, ``staticMp4``) stays inside, and write-only fields (Pinata credentials)
    never come back.
    """
    params = task.params
    shown: dict[str, Any]
    if task.type == tasks.TaskType.UPLOAD:
        shown = _pick(params, ("url", "c2pa", "profiles", "targetSegmentSizeSecs"))
    elif task.type == tasks.TaskType.CLIP:
        strategy = _pick(params.get("clipStrategy"), ("startTime", "endTime", "playbackId"))
        shown = {"clipStrategy": strategy}
        if task.input_asset_id:
            shown["inputId"] = task.input_asset_id
    elif task.type == tasks.TaskType.EXPORT:
        shown = _export_params(params)
    elif task.type == tasks.TaskType.EXPORT_DATA:
        shown = _pick(params, ("content", "type", "id"))
        shown["ipfs"] = _pick(params.get("ipfs"), ("nftMetadataTemplate", "nftMetadata"))
    elif task.type == tasks.TaskType.TRANSCODE_FILE:
        shown = _transcode_params(params)
    else:
        shown = dict(params)
    return {PARAMS_KEY.get(task.type, task.type): _mask(shown)}


def eta(task: tasks.Task, now: datetime) -> datetime | None:
    """When a running task should finish, from the rate of its progress so far."""
    return tasks.eta(task, now)


def task_json(
    task: tasks.Task,
    *,
    output_asset: assets.Asset | None = None,
    base_url: str = "",
    queue_position: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A task as Livepeer's ``GET /task/{id}`` returns it.

    Two fields are ours (the SDK ignores them): ``status.queuePosition`` for a waiting task and
    ``status.eta`` (Unix ms) for a running one, when ``queue_position`` and ``now`` are given.
    """
    status: dict[str, Any] = {"phase": str(task.phase), "updatedAt": ms(task.updated_at)}
    if task.phase is tasks.Phase.RUNNING:
        status["progress"] = round(task.progress or 0.0, 3)
        finish = eta(task, now) if now is not None else None
        if finish is not None:
            status["eta"] = ms(finish)
    if queue_position is not None and task.phase is tasks.Phase.WAITING:
        status["queuePosition"] = queue_position
    if task.phase is not tasks.Phase.COMPLETED:
        status["retries"] = task.retries
    if task.error_message and task.phase is not tasks.Phase.COMPLETED:
        status["errorMessage"] = task.error_message
    body: dict[str, Any] = {
        "id": task.id,
        "type": task.type,
        "createdAt": ms(task.created_at),
        "projectId": task.project_id,
        "params": public_params(task),
        "status": status,
    }
    if task.scheduled_at is not None:
        body["scheduledAt"] = ms(task.scheduled_at)
    if task.input_asset_id:
        body["inputAssetId"] = task.input_asset_id
    if task.output_asset_id:
        body["outputAssetId"] = task.output_asset_id
    if task.output is not None and task.phase is tasks.Phase.COMPLETED:
        output = _mask(dict(task.output))
        if "upload" in output and output_asset is not None:
            output["upload"] = {
                **output["upload"],
                "assetSpec": asset_json(output_asset, base_url=base_url),
            }
        body["output"] = output
    return body


def asset_json(asset: assets.Asset, *, base_url: str) -> dict[str, Any]:
    """An asset as Livepeer's ``GET /asset/{id}`` returns it."""
    status: dict[str, Any] = {"phase": str(asset.phase), "updatedAt": ms(asset.updated_at)}
    if asset.phase is assets.AssetPhase.PROCESSING and asset.progress is not None:
        status["progress"] = round(asset.progress, 3)
    if asset.error_message and asset.phase is assets.AssetPhase.FAILED:
        status["errorMessage"] = asset.error_message
    body: dict[str, Any] = {
        "id": asset.id,
        "type": "video",
        "name": asset.name,
        "playbackId": asset.playback_id,
        "projectId": asset.project_id,
        "createdAt": ms(asset.created_at),
        "source": _mask(dict(asset.source)),
        "status": status,
    }
    if asset.storage:
        body["storage"] = _mask(dict(asset.storage))
    options = asset.options
    creator = options.get("creatorId")
    if isinstance(creator, Mapping):  # assets created before creatorId was checked: a bare value
        creator = creator.get("value")
    if isinstance(creator, str):
        body["creatorId"] = {"type": "unverified", "value": creator}
    if options.get("playbackPolicy") is not None:
        body["playbackPolicy"] = options["playbackPolicy"]
    media = asset.media
    if asset.phase is assets.AssetPhase.READY:
        base = base_url.rstrip("/")
        if media.get("hls"):
            body["playbackUrl"] = f"{base}/media/{media['hls']}"
        download = media.get("download") or media.get("source")  # the best static MP4 first
        if download:
            body["downloadUrl"] = f"{base}/media/{download}"
        for key in ("size", "hash", "videoSpec"):
            if media.get(key) is not None:
                body[key] = media[key]
    return body
