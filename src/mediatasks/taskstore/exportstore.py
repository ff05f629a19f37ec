"""Exports and asset patches, over ``SqlTaskStore``'s transactions.

An asset's JSON documents (``options``, ``storage``) are changed by a compare-and-set: read the
row, compute the new documents in Python (``ipfs.asset_storage`` says how storage moves), and
write them with ``revise_asset`` (``sql/exports.sql``), which matches only while the row still has
the revision and phase that were read.  A miss means another transaction changed the asset in
between (PostgreSQL; SQLite runs one write transaction at a time): read again and recompute.

``_follow_export`` is called by the task transitions (claim, progress, complete, fail, cancel,
manual retry) inside their own transactions, so the exported asset's ``storage.status`` changes
exactly when its pending export task does.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from mediatasks import assets, errors, tasks
from mediatasks.ipfs import asset_storage
from mediatasks.taskstore import base
from mediatasks.taskstore.rows import asset_from_row, load_json, to_ms

__all__ = ["ExportRows"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: Compare-and-set attempts before giving up on an asset that keeps changing.
_ATTEMPTS: Final = 20


class ExportRows(abc.ABC):
    """Export tasks and asset patches."""

    queries: Mapping[str, str]

    @abc.abstractmethod
    async def _change(self, fn: Callable[[Any], Awaitable[_T]]) -> _T: ...

    @abc.abstractmethod
    async def _insert_task(self, tx: Any, new: base.NewTask, now_ms: int) -> tasks.Task: ...

    @abc.abstractmethod
    def _json(self, value: Any) -> Any: ...

    # -- rows -----------------------------------------------------------------------------------
    async def _asset_row(
        self, tx: Any, asset_id: str, project_id: str | None
    ) -> dict[str, Any] | None:
        found: list[dict[str, Any]] = await tx.rows(
            self.queries["get_asset"], {"id": asset_id, "project_id": project_id}
        )
        return found[0] if found else None

    async def _live_asset(self, tx: Any, asset_id: str, project_id: str) -> dict[str, Any]:
        row = await self._asset_row(tx, asset_id, project_id)
        if row is None:
            raise errors.NotFound("Asset not found")
        return row

    async def _revise(
        self,
        tx: Any,
        row: Mapping[str, Any],
        now_ms: int,
        *,
        name: str | None = None,
        options: Mapping[str, Any] | None = None,
        storage: Mapping[str, Any] | None = None,
        touch: bool = True,
    ) -> dict[str, Any] | None:
        """Write the asset's name and documents unless it changed since ``row`` was read.

        Returns the new row, or ``None`` on a miss.  ``touch=False`` keeps ``updated_at``: the
        write only proves that the asset was still as read.
        """
        found: list[dict[str, Any]] = await tx.rows(
            self.queries["revise_asset"],
            {
                "id": row["id"],
                "revision": row["revision"],
                "phase": row["phase"],
                "name": row["name"] if name is None else name,
                "options": self._json(
                    dict(load_json(row["options"]) if options is None else options)
                ),
                "storage": self._json(
                    dict(load_json(row["storage"]) if storage is None else storage)
                ),
                "now": now_ms if touch else row["updated_at"],
            },
        )
        return found[0] if found else None

    # -- exports --------------------------------------------------------------------------------
    async def start_export(
        self,
        asset_id: str,
        project_id: str,
        task: base.NewTask,
        *,
        ipfs_spec: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> tasks.Task:
        now_ms = to_ms(now or datetime.now(UTC))
        new = dataclasses.replace(
            task, id=task.id or str(uuid.uuid4()), input_asset_id=asset_id, project_id=project_id
        )
        assert new.id is not None

        async def run(tx: Any) -> tasks.Task:
            for _ in range(_ATTEMPTS):
                row = await self._live_asset(tx, asset_id, project_id)
                if row["phase"] != assets.AssetPhase.READY:
                    raise errors.InvalidTransition("asset is not ready to be exported")
                if ipfs_spec is None:
                    changed = await self._revise(tx, row, now_ms, touch=False)
                else:
                    storage = asset_storage.requested(
                        load_json(row["storage"]), ipfs_spec, str(new.id), now_ms
                    )
                    changed = await self._revise(tx, row, now_ms, storage=storage)
                if changed is not None:
                    break
            else:
                raise errors.Conflict("the asset kept changing while the export was created")
            created = await self._insert_task(tx, new, now_ms)
            if ipfs_spec is not None:
                tx.emit("asset.updated", "asset", changed)
            return created

        return await self._change(run)

    async def patch_asset(
        self,
        asset_id: str,
        project_id: str,
        patch: base.AssetPatch,
        *,
        export: base.NewTask | None = None,
        now: datetime | None = None,
    ) -> tuple[assets.Asset, tasks.Task | None]:
        if patch.ipfs_spec is not None and export is None:
            raise errors.InvalidInput("storing an asset on IPFS needs an export task")
        now_ms = to_ms(now or datetime.now(UTC))
        task_id = (export.id if export is not None else None) or str(uuid.uuid4())

        async def run(tx: Any) -> tuple[assets.Asset, tasks.Task | None]:
            for _ in range(_ATTEMPTS):
                row = await self._live_asset(tx, asset_id, project_id)
                options = dict(load_json(row["options"]))
                for key, value in patch.options.items():
                    if value is None:
                        options.pop(key, None)
                    else:
                        options[key] = value
                storage = load_json(row["storage"])
                current = asset_storage.current_spec(storage)
                exporting = patch.ipfs_spec is not None and (
                    current is None or dict(current) != dict(patch.ipfs_spec)
                )
                if exporting:
                    assert patch.ipfs_spec is not None
                    if row["phase"] != assets.AssetPhase.READY:
                        raise errors.InvalidTransition("asset is not ready")
                    storage = asset_storage.requested(storage, patch.ipfs_spec, task_id, now_ms)
                changed = await self._revise(
                    tx, row, now_ms, name=patch.name, options=options, storage=storage
                )
                if changed is not None:
                    break
            else:
                raise errors.Conflict("the asset kept changing while it was being updated")
            created = None
            if exporting:
                assert export is not None
                created = await self._insert_task(
                    tx,
                    dataclasses.replace(
                        export, id=task_id, input_asset_id=asset_id, project_id=project_id
                    ),
                    now_ms,
                )
            tx.emit("asset.updated", "asset", changed)
            return asset_from_row(changed), created

        return await self._change(run)

    async def _export_when_ready(
        self, tx: Any, row: Mapping[str, Any], filled_by: tasks.Task, now_ms: int
    ) -> None:
        """Start the IPFS export that an asset asked for at its creation, now that it is ready.

        Called by the transaction that makes the asset ready, so the export exists exactly when
        the asset is ready; an asset whose storage already has an export task is left alone.
        """
        storage = load_json(row["storage"])
        spec = asset_storage.current_spec(storage)
        if spec is None or storage.get("status"):
            return
        new = base.NewTask(
            id=str(uuid.uuid4()),
            project_id=row["project_id"],
            type=tasks.TaskType.EXPORT,
            params={"ipfs": dict(spec)},
            max_retries=filled_by.max_retries,
            input_asset_id=row["id"],
        )
        assert new.id is not None
        changed = await self._revise(
            tx, row, now_ms, storage=asset_storage.requested(storage, spec, new.id, now_ms)
        )
        if changed is None:  # cannot happen inside the transaction that just wrote the row
            raise errors.Conflict("the asset changed while its IPFS export was started")
        await self._insert_task(tx, new, now_ms)
        tx.emit("asset.updated", "asset", changed)

    # -- following export tasks ------------------------------------------------------------------
    async def _follow_export(self, tx: Any, task: tasks.Task, now_ms: int) -> None:
        """Move ``storage`` of the asset that ``task`` exports, if ``task`` is its pending one."""
        if task.type != tasks.TaskType.EXPORT or task.input_asset_id is None:
            return
        for _ in range(_ATTEMPTS):
            row = await self._asset_row(tx, task.input_asset_id, None)
            if row is None:
                return
            storage = asset_storage.follow(load_json(row["storage"]), task, now_ms)
            if storage is None:
                return
            changed = await self._revise(tx, row, now_ms, storage=storage)
            if changed is not None:
                tx.emit("asset.updated", "asset", changed, task_id=task.id)
                return
        # The transition itself must not fail for this: the storage status lags until the next.
        log.warning(
            "asset %s kept changing; its storage status was not updated", task.input_asset_id
        )
