"""Use cases of exports: export an asset, update an asset (which may store it on IPFS), export a
document to IPFS.

Requests are refused here, before any task exists, when they could never run: a custom URL that
is not allowed, or an export to IPFS on a server with no IPFS service (see
``ipfs.pinning.pinner_for``).  The store then checks, in the transaction that creates the task,
that the asset is ready.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from mediatasks import assets, errors, fetch, tasks, taskstore
from mediatasks import settings as settings_module
from mediatasks.ipfs import asset_storage, pinning
from mediatasks.worker.handlers import export as export_handler

__all__ = ["MAX_DOCUMENT_BYTES", "export_asset", "export_document", "patch_asset"]

#: Largest document that ``export-data`` accepts (it is kept in the task's params).
MAX_DOCUMENT_BYTES: Final = 1024 * 1024


def _check_ipfs(settings: settings_module.Settings, target: Mapping[str, Any]) -> None:
    if pinning.pinner_for(settings, target.get("pinata")) is None:
        raise errors.InvalidInput(pinning.not_configured_message())


async def export_asset(
    store: taskstore.TaskStore,
    settings: settings_module.Settings,
    *,
    project_id: str,
    asset_id: str,
    params: Mapping[str, Any],
) -> tasks.Task:
    """Start an export of a ready asset: ``params`` is ``{"custom": {...}}`` or ``{"ipfs": {...}}``.

    An export to IPFS becomes the asset's pending storage task, so ``storage.status`` follows it.
    Raises ``NotFound``, ``InvalidTransition`` (the asset is not ready) or ``InvalidInput``.
    """
    custom, ipfs = params.get("custom"), params.get("ipfs")
    if (custom is None) == (ipfs is None):
        raise errors.InvalidInput("an export needs exactly one of custom and ipfs")
    if custom is not None:
        fetch.check_url(str(custom.get("url", "")), allow_private=settings.allow_private_urls)
    spec = None
    if ipfs is not None:
        _check_ipfs(settings, ipfs)
        spec = {key: value for key, value in ipfs.items() if key != "pinata"}
    return await store.start_export(
        asset_id,
        project_id,
        taskstore.NewTask(
            project_id=project_id,
            type=tasks.TaskType.EXPORT,
            params=dict(params),
            max_retries=settings.max_retries,
        ),
        ipfs_spec=spec,
    )


async def patch_asset(
    store: taskstore.TaskStore,
    settings: settings_module.Settings,
    *,
    project_id: str,
    asset_id: str,
    name: str | None = None,
    options: Mapping[str, Any] | None = None,
    storage: Mapping[str, Any] | None = None,
) -> tuple[assets.Asset, tasks.Task | None]:
    """Update an asset's name and options; ``storage`` with ``ipfs`` stores it on IPFS.

    As on Studio, ``storage.ipfs`` (``true`` or ``{"spec": {...}}``) starts an export task unless
    the asset has that spec already, and the asset must be ready (``InvalidTransition``).
    Removing an asset from IPFS (``false`` or ``null`` once it is there) is refused
    (``InvalidInput``): nothing can unpin it.  Returns the asset and the export started, if any.
    """
    spec = None
    if storage is not None and "ipfs" in storage:
        spec = asset_storage.spec_of_request(storage["ipfs"])
        if spec is None:
            current = await store.get_asset(asset_id, project_id)
            if asset_storage.current_spec(current.storage) is not None:
                raise errors.InvalidInput("Cannot remove asset from IPFS")
        else:
            _check_ipfs(settings, {})
    export = None
    if spec is not None:
        export = taskstore.NewTask(
            project_id=project_id,
            type=tasks.TaskType.EXPORT,
            params={"ipfs": spec},
            max_retries=settings.max_retries,
        )
    return await store.patch_asset(
        asset_id,
        project_id,
        taskstore.AssetPatch(name=name, options=dict(options or {}), ipfs_spec=spec),
        export=export,
    )


async def export_document(
    store: taskstore.TaskStore,
    settings: settings_module.Settings,
    *,
    project_id: str,
    params: Mapping[str, Any],
) -> tasks.Task:
    """Start an ``export-data`` task that puts ``params["content"]`` on IPFS."""
    size_bytes = len(export_handler.document_bytes(params.get("content")))
    if size_bytes > MAX_DOCUMENT_BYTES:
        raise errors.InvalidInput(
            f"content is {size_bytes} bytes, more than the limit of {MAX_DOCUMENT_BYTES}"
        )
    _check_ipfs(settings, params.get("ipfs") or {})
    return await store.create_task(
        taskstore.NewTask(
            project_id=project_id,
            type=tasks.TaskType.EXPORT_DATA,
            params=dict(params),
            max_retries=settings.max_retries,
        )
    )
