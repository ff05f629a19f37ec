"""Idempotency keys and the lookups that uploads need, over ``SqlTaskStore``'s transactions.

Queries are in ``sql/uploads.sql``.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from mediatasks import assets, errors, tasks
from mediatasks.taskstore import base
from mediatasks.taskstore.rows import asset_from_row, load_json, task_from_row, to_ms

__all__ = ["UploadRows"]

_T = TypeVar("_T")
#: How long an idempotency key is remembered.
KEY_LIFETIME = timedelta(hours=24)


class UploadRows(abc.ABC):
    """Idempotency keys, repeated URL imports, an asset's task."""

    queries: Mapping[str, str]

    @abc.abstractmethod
    async def _read(self, fn: Callable[[Any], Awaitable[_T]]) -> _T: ...

    @abc.abstractmethod
    async def _write(self, fn: Callable[[Any], Awaitable[_T]], *, late: Any = None) -> _T: ...

    @abc.abstractmethod
    def _json(self, value: Any) -> Any: ...

    async def _row(self, tx: Any, name: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        found: list[dict[str, Any]] = await tx.rows(self.queries[name], params)
        return found[0] if found else None

    async def reserve_idempotency_key(
        self, project_id: str, key: str, request_hash: str, *, now: datetime | None = None
    ) -> base.IdempotentRequest | None:
        moment = now or datetime.now(UTC)
        params = {
            "project_id": project_id,
            "key": key,
            "request_hash": request_hash,
            "now": to_ms(moment),
        }

        async def run(tx: Any) -> dict[str, Any] | None:
            await tx.rows(
                self.queries["expire_idempotency_keys"], {"before": to_ms(moment - KEY_LIFETIME)}
            )
            if await self._row(tx, "insert_idempotency_key", params) is not None:
                return None
            return await self._row(tx, "get_idempotency_key", params)

        row = await self._write(run)
        if row is None:
            return None
        body = row["body"]
        return base.IdempotentRequest(
            request_hash=row["request_hash"],
            status=row["status"],
            body=None if body is None else load_json(body),
        )

    async def save_idempotent_response(
        self, project_id: str, key: str, *, status: int, body: Any
    ) -> None:
        params = {"project_id": project_id, "key": key, "status": status, "body": self._json(body)}
        await self._write(lambda tx: tx.rows(self.queries["save_idempotent_response"], params))

    async def release_idempotency_key(self, project_id: str, key: str) -> None:
        params = {"project_id": project_id, "key": key}
        await self._write(lambda tx: tx.rows(self.queries["release_idempotency_key"], params))

    async def _recent_url_import(
        self, tx: Any, project_id: str, url: str, since: datetime
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        params = {"project_id": project_id, "since": to_ms(since)}
        for row in await tx.rows(self.queries["recent_url_imports"], params):
            source = load_json(row["source"])
            if source.get("type") == "url" and source.get("url") == url:
                task = await self._row(tx, "output_task_of_asset", {"asset_id": row["id"]})
                if task is not None:
                    return row, task
        return None

    async def task_of_asset(self, asset_id: str) -> tasks.Task | None:
        row = await self._read(
            lambda tx: self._row(tx, "output_task_of_asset", {"asset_id": asset_id})
        )
        return None if row is None else task_from_row(row)

    async def asset_by_playback_id(self, playback_id: str, project_id: str) -> assets.Asset:
        params = {"playback_id": playback_id, "project_id": project_id}
        row = await self._read(lambda tx: self._row(tx, "asset_by_playback_id", params))
        if row is None:
            raise errors.NotFound("Content not found")
        return asset_from_row(row)
