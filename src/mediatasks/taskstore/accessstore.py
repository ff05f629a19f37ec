"""The access-control half of the SQL task store: signing keys, and finding an asset to play.

Shared by both backends through ``SqlTaskStore``; the queries are in ``sql/access.sql``.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from mediatasks import assets, errors
from mediatasks.taskstore import base
from mediatasks.taskstore.rows import asset_from_row, from_ms, maybe_from_ms, to_ms

__all__ = ["MAX_SIGNING_KEYS", "AccessRows"]

_T = TypeVar("_T")

#: Signing keys a project may have at once (Livepeer's limit).
MAX_SIGNING_KEYS = 10


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


class AccessRows(abc.ABC):
    """Signing keys and playback lookups over the transaction primitives of ``SqlTaskStore``."""

    queries: Mapping[str, str]

    @abc.abstractmethod
    async def _read(self, fn: Callable[[Any], Awaitable[_T]]) -> _T: ...

    @abc.abstractmethod
    async def _write(self, fn: Callable[[Any], Awaitable[_T]], *, late: Any = None) -> _T: ...

    @staticmethod
    def _signing_key(row: Mapping[str, Any]) -> base.SigningKey:
        return base.SigningKey(
            id=row["id"],
            project_id=row["project_id"],
            name=row["name"],
            public_key=row["public_key"],
            disabled=bool(row["disabled"]),
            created_at=from_ms(row["created_at"]),
            updated_at=from_ms(row["updated_at"]),
            last_seen_at=maybe_from_ms(row["last_seen_at"]),
        )

    async def _access_row(
        self, tx: Any, name: str, params: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        found: list[dict[str, Any]] = await tx.rows(self.queries[name], params)
        return found[0] if found else None

    async def create_signing_key(
        self,
        project_id: str,
        *,
        name: str | None,
        public_key: str,
        now: datetime | None = None,
    ) -> base.SigningKey:
        params: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "project_id": project_id,
            "public_key": public_key,
            "disabled": False,
            "now": to_ms(_now(now)),
        }

        async def run(tx: Any) -> dict[str, Any]:
            counted = await self._access_row(tx, "count_signing_keys", {"project_id": project_id})
            held = int(counted["n"]) if counted else 0
            if held >= MAX_SIGNING_KEYS:
                raise errors.Conflict(
                    f"a project can only have up to {MAX_SIGNING_KEYS} signing keys, "
                    "delete some first"
                )
            row = await self._access_row(
                tx, "insert_signing_key", {**params, "name": name or f"Signing Key {held + 1}"}
            )
            assert row is not None
            return row

        return self._signing_key(await self._write(run))

    async def get_signing_key(self, key_id: str, project_id: str) -> base.SigningKey:
        params = {"id": key_id, "project_id": project_id}
        row = await self._read(lambda tx: self._access_row(tx, "get_signing_key", params))
        if row is None:
            raise errors.NotFound("signing key not found")
        return self._signing_key(row)

    async def list_signing_keys(self, project_id: str) -> list[base.SigningKey]:
        params = {"project_id": project_id, "limit": MAX_SIGNING_KEYS * 10}
        found = await self._read(lambda tx: tx.rows(self.queries["list_signing_keys"], params))
        return [self._signing_key(row) for row in found]

    async def update_signing_key(
        self,
        key_id: str,
        project_id: str,
        *,
        name: str | None = None,
        disabled: bool | None = None,
        now: datetime | None = None,
    ) -> base.SigningKey:
        params = {
            "id": key_id,
            "project_id": project_id,
            "name": name,
            "disabled": disabled,
            "now": to_ms(_now(now)),
        }
        row = await self._write(lambda tx: self._access_row(tx, "update_signing_key", params))
        if row is None:
            raise errors.NotFound("signing key not found")
        return self._signing_key(row)

    async def delete_signing_key(self, key_id: str, project_id: str) -> base.SigningKey:
        params = {"id": key_id, "project_id": project_id}
        row = await self._write(lambda tx: self._access_row(tx, "delete_signing_key", params))
        if row is None:
            raise errors.NotFound("signing key not found")
        return self._signing_key(row)

    async def signing_key_seen(self, key_id: str, *, now: datetime | None = None) -> None:
        params = {"id": key_id, "now": to_ms(_now(now))}
        await self._write(lambda tx: tx.rows(self.queries["signing_key_seen"], params))

    async def playback_asset(self, playback_id: str) -> assets.Asset:
        params = {"playback_id": playback_id}
        row = await self._read(lambda tx: self._access_row(tx, "playback_asset", params))
        if row is None:
            raise errors.NotFound("Content not found")
        return asset_from_row(row)
