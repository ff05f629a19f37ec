"""An asset's IPFS storage: Livepeer's ``asset.storage`` object, and how export tasks move it.

The object, stored as it is shown::

    {"ipfs":   {"spec": {...}, "cid": "bafy...", "url": "ipfs://bafy...",
                "gatewayUrl": "https://ipfs.io/ipfs/bafy...", "updatedAt": <ms>,
                "nftMetadata": {"cid": "bafk...", "url": "ipfs://bafk...", "gatewayUrl": "..."}},
     "status": {"phase": "waiting"|"processing"|"ready"|"failed",
                "progress"?: 0..1, "errorMessage"?: "...",
                "tasks": {"pending"?: <task id>, "last"?: <task id>, "failed"?: <task id>}}}

An export to IPFS registers itself as ``tasks.pending`` when it is created (``requested``); from
then on its phase changes move ``status`` (``follow``), as Studio's scheduler does: running makes
it ``processing`` with the task's progress, completion makes it ``ready`` (``tasks.last``, and the
CID under ``ipfs``), failure or cancellation makes it ``failed`` (``tasks.failed`` and the error).
A task that is not the pending one changes nothing, so an older export finishing late cannot
overwrite a newer one's state.  Exports to a custom URL never register: they do not put the asset
in storage.  Every function here is pure; the task store applies them inside the transaction of
the task's transition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediatasks import tasks

__all__ = ["current_spec", "follow", "requested", "spec_of_request"]


def spec_of_request(value: Any) -> dict[str, Any] | None:
    """The export spec that a request's ``storage.ipfs`` asks for; ``None`` asks for removal.

    ``true`` means the default spec (``{}``), ``{"spec": {...}}`` that spec, and ``false``,
    ``null`` or ``{"spec": null}`` no IPFS storage at all.
    """
    if value is True:
        return {}
    if isinstance(value, Mapping):
        if "spec" not in value:
            return {}
        spec = value["spec"]
        return None if spec is None else dict(spec)
    return None


def current_spec(storage: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The spec the asset is (or is being) stored on IPFS with, or ``None``."""
    ipfs = storage.get("ipfs")
    if not isinstance(ipfs, Mapping):
        return None
    spec = ipfs.get("spec")
    return spec if isinstance(spec, Mapping) else None


def _status_and_tasks(storage: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    status = dict(storage.get("status") or {})
    return status, dict(status.get("tasks") or {})


def requested(
    storage: Mapping[str, Any], spec: Mapping[str, Any], task_id: str, now_ms: int
) -> dict[str, Any]:
    """The storage once export ``task_id`` with ``spec`` has been created."""
    _, task_ids = _status_and_tasks(storage)
    ipfs = {**dict(storage.get("ipfs") or {}), "spec": dict(spec), "updatedAt": now_ms}
    return {
        **storage,
        "ipfs": ipfs,
        "status": {"phase": "waiting", "tasks": {**task_ids, "pending": task_id}},
    }


def follow(storage: Mapping[str, Any], task: tasks.Task, now_ms: int) -> dict[str, Any] | None:
    """The storage once ``task`` (an export of the asset) has entered its current phase.

    ``None`` when nothing changes: the task is not the asset's pending storage task, or its phase
    says nothing about storage (an automatic retry waiting out its back-off).
    """
    status, task_ids = _status_and_tasks(storage)
    pending = task_ids.get("pending")
    if task.phase is tasks.Phase.WAITING:
        # A manual retry of the export that failed last takes the pending place again.
        if pending is None and task_ids.get("failed") == task.id:
            return {
                **storage,
                "status": {"phase": "waiting", "tasks": {**task_ids, "pending": task.id}},
            }
        return None
    if pending != task.id:
        return None
    others = {key: value for key, value in task_ids.items() if key != "pending"}
    if task.phase is tasks.Phase.RUNNING:
        running = {
            "phase": "processing",
            "progress": round(task.progress or 0.0, 3),
            "tasks": task_ids,
        }
        return None if running == status else {**storage, "status": running}
    if task.phase is tasks.Phase.COMPLETED:
        ipfs = dict(storage.get("ipfs") or {})
        exported = (task.output or {}).get("export", {}).get("ipfs") or {}
        if exported.get("videoFileCid"):
            ipfs.update(
                cid=exported["videoFileCid"],
                url=exported.get("videoFileUrl"),
                gatewayUrl=exported.get("videoFileGatewayUrl"),
            )
        if exported.get("nftMetadataCid"):
            ipfs["nftMetadata"] = {
                "cid": exported["nftMetadataCid"],
                "url": exported.get("nftMetadataUrl"),
                "gatewayUrl": exported.get("nftMetadataGatewayUrl"),
            }
        ipfs["updatedAt"] = now_ms
        return {
            **storage,
            "ipfs": {key: value for key, value in ipfs.items() if value is not None},
            "status": {"phase": "ready", "tasks": {"last": task.id}},
        }
    if task.phase in (tasks.Phase.FAILED, tasks.Phase.CANCELLED):
        failed: dict[str, Any] = {"phase": "failed", "tasks": {**others, "failed": task.id}}
        if task.error_message:
            failed["errorMessage"] = task.error_message
        return {**storage, "status": failed}
    return None
