"""The transactions of the task store, shared by the SQLite and PostgreSQL backends.

A backend module (``sqlite.py``, ``postgres.py``) supplies a connection, a transaction, its named
queries and its way of waking workers; everything that decides *what* a transition writes lives
here, once.  Each public method runs one transaction in a thread (the drivers used are
synchronous), and every transition appends its ``task_events`` row inside that transaction.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import json
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from mediatasks import assets, errors, tasks
from mediatasks.taskstore import (
    accessstore,
    base,
    exportstore,
    listing,
    uploadstore,
    webhookstore,
)
from mediatasks.taskstore.rows import (
    asset_from_row,
    from_ms,
    load_json,
    maybe_from_ms,
    task_from_row,
    to_ms,
)

__all__ = [
    "ASSET_FIELDS",
    "TASK_FIELDS",
    "Change",
    "SqlTaskStore",
    "Tx",
    "asset_from_row",
    "from_ms",
    "task_from_row",
    "to_ms",
]

_T = TypeVar("_T")

#: Columns a task list may filter and order on.
TASK_FIELDS = frozenset(
    {"id", "type", "phase", "created_at", "updated_at", "input_asset_id", "output_asset_id"}
)
#: Columns an asset list may filter and order on.
ASSET_FIELDS = frozenset({"id", "name", "phase", "playback_id", "created_at", "updated_at"})


class Tx(Protocol):
    """One open transaction, as the shared code sees it."""

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run ``sql`` and return its rows as dicts (empty for statements without rows)."""
        ...


_JSON_COLUMNS = frozenset({"params", "output", "source", "options", "media", "storage", "data"})


class Change:
    """A write transaction that also collects the webhook events of what it changes.

    ``SqlTaskStore._change`` writes the events into the outbox just before the commit, in one
    statement, so an event exists exactly when its change does.
    """

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self.tx.rows(sql, params)

    def emit(
        self, name: str, kind: str, row: Mapping[str, Any], *, success: bool | None = None
    ) -> None:
        """Record event ``name`` about ``row`` (a task or asset row, as it is now)."""
        plain = {
            key: json.loads(value) if key in _JSON_COLUMNS and isinstance(value, str) else value
            for key, value in row.items()
        }
        payload: dict[str, Any] = {"kind": kind, "row": plain}
        if success is not None:
            payload["success"] = success
        self.events.append((name, str(row["project_id"]), payload))


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SqlTaskStore(
    webhookstore.WebhookRows,
    uploadstore.UploadRows,
    exportstore.ExportRows,
    accessstore.AccessRows,
    abc.ABC,
):
    """``TaskStore`` over any SQL backend that supplies ``_read``, ``_write`` and its queries."""

    #: The dialect's named queries, in the driver's parameter style.
    queries: Mapping[str, str]

    # -- what a backend supplies --------------------------------------------------------------
    @abc.abstractmethod
    async def _read(self, fn: Callable[[Tx], _T]) -> _T:
        """Run ``fn`` in a read transaction."""

    @abc.abstractmethod
    async def _write(self, fn: Callable[[Tx], _T]) -> _T:
        """Run ``fn`` in a write transaction, committed when it returns."""

    @abc.abstractmethod
    def _placeholder(self, name: str) -> str:
        """How a parameter called ``name`` is written in this dialect's SQL."""

    @abc.abstractmethod
    def _work_added(self, tx: Tx) -> None:
        """Called inside a transaction that made tasks runnable now."""

    def _json(self, value: Any) -> Any:
        """A Python value as the driver takes it for a JSON column."""
        return json.dumps(value, separators=(",", ":"))

    async def _change(self, fn: Callable[[Change], _T]) -> _T:
        """Run ``fn`` in a write transaction and write the events it emitted to the outbox."""

        def run(tx: Tx) -> _T:
            change = Change(tx)
            result = fn(change)
            self._flush(change)
            return result

        return await self._write(run)

    def _flush(self, change: Change) -> None:
        if not change.events:
            return
        now_ms = to_ms(datetime.now(UTC))
        params: dict[str, Any] = {"now": now_ms}
        values = []
        for i, (name, project_id, payload) in enumerate(change.events):
            params[f"i{i}"] = str(uuid.uuid4())
            params[f"p{i}"] = project_id
            params[f"n{i}"] = name
            params[f"d{i}"] = self._json(payload)
            marks = ", ".join(self._placeholder(f"{k}{i}") for k in "ipnd")
            values.append(f"({marks}, {self._placeholder('now')})")
        change.tx.rows(
            "INSERT INTO webhook_events (id, project_id, name, payload, created_at) "
            f"VALUES {', '.join(values)}",
            params,
        )

    # -- row mapping ----------------------------------------------------------------------------
    @staticmethod
    def _project(row: Mapping[str, Any]) -> base.Project:
        return base.Project(id=row["id"], name=row["name"], created_at=from_ms(row["created_at"]))

    @staticmethod
    def _key(row: Mapping[str, Any]) -> base.ApiKey:
        return base.ApiKey(
            id=row["id"],
            project_id=row["project_id"],
            name=row["name"],
            created_at=from_ms(row["created_at"]),
            revoked_at=maybe_from_ms(row["revoked_at"]),
        )

    # -- shared pieces of transactions ------------------------------------------------------------
    def _one(self, tx: Tx, name: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        found = tx.rows(self.queries[name], params)
        return found[0] if found else None

    def _event(
        self,
        tx: Tx,
        task: tasks.Task,
        name: str,
        now_ms: int,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        tx.rows(
            self.queries["insert_event"],
            {
                "task_id": task.id,
                "project_id": task.project_id,
                "name": name,
                "phase": str(task.phase),
                "progress": task.progress,
                "now": now_ms,
                "data": self._json(dict(data or {})),
            },
        )

    def _mirror(
        self,
        tx: Change,
        task: tasks.Task,
        now_ms: int,
        phase: assets.AssetPhase | None = None,
    ) -> None:
        """Make the task's output asset follow the task's phase (and an export's input asset)."""
        self._follow_export(tx, task, now_ms)
        phase = phase or assets.mirror_phase(task.phase)
        if task.output_asset_id is None or phase is None:
            return
        progress = 0.0 if phase is assets.AssetPhase.PROCESSING else None
        error_message = task.error_message if phase is assets.AssetPhase.FAILED else None
        changed = self._one(
            tx,
            "mirror_asset",
            {
                "id": task.output_asset_id,
                "phase": str(phase),
                "progress": progress,
                "error_message": error_message,
                "now": now_ms,
            },
        )
        if changed is not None:
            self._emit_asset(tx, changed)

    def _emit_task(
        self, tx: Change, task: tasks.Task, *names: str, success: bool | None = None
    ) -> None:
        row = self._task_row(task)
        for name in names:
            tx.emit(name, "task", row, success=success if name != "task.updated" else None)

    def _emit_asset(self, tx: Change, row: Mapping[str, Any]) -> None:
        tx.emit("asset.updated", "asset", row)
        phase = row["phase"]
        if phase in ("ready", "failed"):
            tx.emit(f"asset.{phase}", "asset", row)

    @staticmethod
    def _task_row(task: tasks.Task) -> dict[str, Any]:
        """A task as a row again (the inverse of ``_task``), for the outbox."""
        row: dict[str, Any] = {}
        for field in dataclasses.fields(task):
            value = getattr(task, field.name)
            if isinstance(value, datetime):
                value = to_ms(value)
            elif isinstance(value, tasks.Phase):
                value = str(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            row[field.name] = value
        return row

    def _guarded(
        self,
        tx: Tx,
        query: str,
        params: Mapping[str, Any],
        *,
        lease: bool,
        what: str,
    ) -> tasks.Task:
        """Run a guarded transition; raise if it matched no row."""
        row = self._one(tx, query, params)
        if row is None:
            current = self._one(tx, "get_task", {"id": params["id"], "project_id": None})
            if current is None:
                raise errors.NotFound(f"task {params['id']} not found")
            phase = current["phase"]
            if lease:
                raise errors.LeaseLost(
                    f"cannot {what} task {params['id']}: the lease is no longer held "
                    f"(the task is {phase})"
                )
            raise errors.InvalidTransition(f"cannot {what} a task that is {phase}")
        return task_from_row(row)

    def _page(
        self, table: str, query: base.Query, allowed: frozenset[str]
    ) -> Callable[[Tx], tuple[list[dict[str, Any]], int | None, tuple[Any, ...] | None]]:
        """A page of ``table`` (``taskstore.listing`` builds its SQL), its total when asked
        for, and where the next page starts."""
        sql = listing.build(
            table,
            query,
            allowed,
            self._placeholder,
            extra_where="phase <> 'deleted'" if table == "assets" else "",
        )

        def run(tx: Tx) -> tuple[list[dict[str, Any]], int | None, tuple[Any, ...] | None]:
            found, after = listing.next_key(tx.rows(sql.select, sql.params), sql, query.limit)
            total = tx.rows(sql.count, sql.count_params)[0]["n"] if query.with_total else None
            return [dict(row) for row in found], total, after

        return run

    # -- projects and keys --------------------------------------------------------------------
    async def create_project(self, name: str, *, now: datetime | None = None) -> base.Project:
        params = {"id": uuid.uuid4().hex, "name": name, "now": to_ms(_now(now))}
        row = await self._write(lambda tx: self._one(tx, "insert_project", params))
        assert row is not None
        return self._project(row)

    async def list_projects(self) -> list[base.Project]:
        found = await self._read(lambda tx: tx.rows(self.queries["list_projects"], {}))
        return [self._project(row) for row in found]

    async def create_api_key(
        self, project_id: str, name: str, *, now: datetime | None = None
    ) -> tuple[base.ApiKey, str]:
        secret = "mt_" + secrets.token_urlsafe(32)
        params = {
            "id": uuid.uuid4().hex[:16],
            "project_id": project_id,
            "name": name,
            "secret_hash": _hash_secret(secret),
            "now": to_ms(_now(now)),
        }
        row = await self._write(lambda tx: self._one(tx, "insert_api_key", params))
        assert row is not None
        return self._key(row), secret

    async def list_api_keys(self, project_id: str | None = None) -> list[base.ApiKey]:
        params = {"project_id": project_id}
        found = await self._read(lambda tx: tx.rows(self.queries["list_api_keys"], params))
        return [self._key(row) for row in found]

    async def revoke_api_key(self, key_id: str, *, now: datetime | None = None) -> base.ApiKey:
        params = {"id": key_id, "now": to_ms(_now(now))}
        row = await self._write(lambda tx: self._one(tx, "revoke_api_key", params))
        if row is None:
            raise errors.NotFound(f"no live API key {key_id}")
        return self._key(row)

    async def authenticate(self, secret: str) -> base.ApiKey | None:
        params = {"secret_hash": _hash_secret(secret)}
        row = await self._read(lambda tx: self._one(tx, "authenticate", params))
        return None if row is None else self._key(row)

    # -- creating work ------------------------------------------------------------------------
    def _insert_task(self, tx: Change, new: base.NewTask, now_ms: int) -> tasks.Task:
        row = self._one(
            tx,
            "insert_task",
            {
                "id": new.id or str(uuid.uuid4()),
                "project_id": new.project_id,
                "type": new.type,
                "phase": str(new.phase),
                "params": self._json(dict(new.params)),
                "max_retries": new.max_retries,
                "input_asset_id": new.input_asset_id,
                "output_asset_id": new.output_asset_id,
                "scheduled_at": now_ms if new.phase is tasks.Phase.WAITING else None,
                "now": now_ms,
            },
        )
        assert row is not None
        task = task_from_row(row)
        self._event(tx, task, "created", now_ms, {"type": task.type})
        self._emit_task(tx, task, "task.spawned")
        if task.phase is tasks.Phase.WAITING:
            self._work_added(tx)
        return task

    async def create_task(self, new: base.NewTask, *, now: datetime | None = None) -> tasks.Task:
        now_ms = to_ms(_now(now))
        return await self._change(lambda tx: self._insert_task(tx, new, now_ms))

    async def create_asset(
        self, asset: base.NewAsset, task: base.NewTask, *, now: datetime | None = None
    ) -> tuple[assets.Asset, tasks.Task]:
        now_ms = to_ms(_now(now))

        def run(tx: Change) -> tuple[assets.Asset, tasks.Task]:
            row = self._one(
                tx,
                "insert_asset",
                {
                    "id": asset.id,
                    "project_id": asset.project_id,
                    "name": asset.name,
                    "playback_id": asset.playback_id,
                    "phase": str(asset.phase),
                    "source": self._json(dict(asset.source)),
                    "options": self._json(dict(asset.options)),
                    "storage": self._json(dict(asset.storage)),
                    "now": now_ms,
                },
            )
            assert row is not None
            tx.emit("asset.created", "asset", row)
            return asset_from_row(row), self._insert_task(tx, task, now_ms)

        return await self._change(run)

    async def schedule(self, task_id: str, *, now: datetime | None = None) -> tasks.Task:
        now_ms = to_ms(_now(now))

        def run(tx: Change) -> tasks.Task:
            task = self._guarded(
                tx, "schedule", {"id": task_id, "now": now_ms}, lease=False, what="schedule"
            )
            self._event(tx, task, "schedule", now_ms)
            self._emit_task(tx, task, "task.updated")
            self._mirror(tx, task, now_ms, assets.AssetPhase.WAITING)
            self._work_added(tx)
            return task

        return await self._change(run)

    # -- reading ------------------------------------------------------------------------------
    async def get_task(self, task_id: str, project_id: str | None = None) -> tasks.Task:
        params = {"id": task_id, "project_id": project_id}
        row = await self._read(lambda tx: self._one(tx, "get_task", params))
        if row is None:
            raise errors.NotFound("task not found")
        return task_from_row(row)

    async def list_tasks(self, query: base.Query) -> base.Page[tasks.Task]:
        found, total, after = await self._read(self._page("tasks", query, TASK_FIELDS))
        items = [task_from_row(row) for row in found]
        return base.Page(items=items, total=total, next_after=after)

    async def list_events(
        self, task_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[tasks.TaskEvent]:
        params = {"task_id": task_id, "after_id": after_id, "limit": limit}
        found = await self._read(lambda tx: tx.rows(self.queries["list_events"], params))
        return [
            tasks.TaskEvent(
                id=row["id"],
                task_id=row["task_id"],
                project_id=row["project_id"],
                name=row["name"],
                phase=tasks.Phase(row["phase"]),
                progress=row["progress"],
                at=from_ms(row["at"]),
                data=load_json(row["data"]),
            )
            for row in found
        ]

    async def count_tasks(self, phase: tasks.Phase | None = None) -> int:
        params = {"phase": None if phase is None else str(phase)}
        row = await self._read(lambda tx: self._one(tx, "count_tasks", params))
        assert row is not None
        return int(row["n"])

    async def queue_depth(self) -> Mapping[tuple[str, tasks.Phase], int]:
        found = await self._read(lambda tx: tx.rows(self.queries["queue_depth"], {}))
        return {(row["type"], tasks.Phase(row["phase"])): int(row["n"]) for row in found}

    async def ping(self) -> None:
        await self._read(lambda tx: tx.rows(self.queries["ping"], {}))

    # -- the worker's transitions -------------------------------------------------------------
    async def claim(
        self,
        worker_id: str,
        *,
        types: Sequence[str],
        limit: int,
        lease_s: float,
        now: datetime | None = None,
    ) -> list[tasks.Task]:
        if limit <= 0 or not types:
            return []
        moment = _now(now)
        now_ms = to_ms(moment)
        params: dict[str, Any] = {
            "worker_id": worker_id,
            "limit": limit,
            "now": now_ms,
            "lease_expires_at": to_ms(moment + timedelta(seconds=lease_s)),
        }
        names = []
        for i, task_type in enumerate(types):
            params[f"t{i}"] = task_type
            names.append(self._placeholder(f"t{i}"))
        sql = self.queries["claim"].replace("{types}", ", ".join(names))

        def run(tx: Change) -> list[tasks.Task]:
            claimed = [task_from_row(row) for row in tx.rows(sql, params)]
            for task in claimed:
                self._event(
                    tx, task, "claim", now_ms, {"worker": worker_id, "attempt": task.attempt}
                )
                self._emit_task(tx, task, "task.updated")
                self._mirror(tx, task, now_ms)
            return claimed

        return await self._change(run)

    async def heartbeat(
        self,
        task_id: str,
        lease_token: str,
        *,
        lease_s: float,
        progress: float | None = None,
        announce: bool = False,
        now: datetime | None = None,
    ) -> tasks.Task:
        moment = _now(now)
        now_ms = to_ms(moment)
        params = {
            "id": task_id,
            "lease_token": lease_token,
            "lease_expires_at": to_ms(moment + timedelta(seconds=lease_s)),
            "progress": None if progress is None else max(0.0, min(1.0, progress)),
            "now": now_ms,
        }

        def run(tx: Change) -> tasks.Task:
            task = self._guarded(tx, "heartbeat", params, lease=True, what="heartbeat")
            if progress is not None and task.progress == params["progress"]:
                self._event(tx, task, "progress", now_ms)
                if announce:
                    self._emit_task(tx, task, "task.updated")
                    self._follow_export(tx, task, now_ms)
                if task.output_asset_id is not None:
                    changed = self._one(
                        tx,
                        "asset_progress",
                        {"id": task.output_asset_id, "progress": task.progress, "now": now_ms},
                    )
                    if changed is not None and announce:
                        self._emit_asset(tx, changed)
            return task

        return await self._change(run)

    async def complete(
        self,
        task_id: str,
        lease_token: str,
        *,
        output: Mapping[str, Any],
        asset_media: Mapping[str, Any] | None = None,
        detail: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> tasks.Task:
        now_ms = to_ms(_now(now))
        params = {
            "id": task_id,
            "lease_token": lease_token,
            "output": self._json(dict(output)),
            "now": now_ms,
        }

        def run(tx: Change) -> tasks.Task:
            task = self._guarded(tx, "complete", params, lease=True, what="complete")
            self._event(tx, task, "complete", now_ms, detail)
            self._emit_task(tx, task, "task.updated", "task.completed", success=True)
            self._follow_export(tx, task, now_ms)
            if task.output_asset_id is not None:
                changed = self._one(
                    tx,
                    "asset_ready",
                    {
                        "id": task.output_asset_id,
                        "media": self._json(dict(asset_media or {})),
                        "now": now_ms,
                    },
                )
                if changed is not None:
                    self._emit_asset(tx, changed)
                    self._export_when_ready(tx, changed, task, now_ms)
            return task

        return await self._change(run)

    def _fail(
        self,
        tx: Change,
        task_id: str,
        lease_token: str,
        error_message: str,
        now_ms: int,
        event: str,
        detail: Mapping[str, Any] | None,
    ) -> tasks.Task:
        params = {
            "id": task_id,
            "lease_token": lease_token,
            "error_message": error_message,
            "now": now_ms,
        }
        task = self._guarded(tx, "fail", params, lease=True, what="fail")
        self._event(tx, task, event, now_ms, {"error": error_message, **(detail or {})})
        self._emit_task(tx, task, "task.updated", "task.failed", success=False)
        self._mirror(tx, task, now_ms)
        return task

    def _retry_later(
        self,
        tx: Change,
        task_id: str,
        lease_token: str,
        error_message: str,
        now_ms: int,
        delay_s: float,
        event: str,
        detail: Mapping[str, Any] | None,
    ) -> tasks.Task:
        run_at = now_ms + int(delay_s * 1000)
        params = {
            "id": task_id,
            "lease_token": lease_token,
            "error_message": error_message,
            "run_at": run_at,
            "now": now_ms,
        }
        task = self._guarded(tx, "retry_later", params, lease=True, what="retry")
        data = {"error": error_message, "retryAt": run_at, **(detail or {})}
        self._event(tx, task, event, now_ms, data)
        self._emit_task(tx, task, "task.updated")
        if delay_s <= 0:
            self._work_added(tx)
        return task

    async def fail(
        self,
        task_id: str,
        lease_token: str,
        *,
        error_message: str,
        detail: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> tasks.Task:
        now_ms = to_ms(_now(now))
        return await self._change(
            lambda tx: self._fail(tx, task_id, lease_token, error_message, now_ms, "fail", detail)
        )

    async def retry_later(
        self,
        task_id: str,
        lease_token: str,
        *,
        error_message: str,
        delay_s: float,
        detail: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> tasks.Task:
        now_ms = to_ms(_now(now))
        return await self._change(
            lambda tx: self._retry_later(
                tx, task_id, lease_token, error_message, now_ms, delay_s, "retry_later", detail
            )
        )

    async def release(
        self, task_id: str, lease_token: str, *, now: datetime | None = None
    ) -> tasks.Task:
        now_ms = to_ms(_now(now))
        params = {"id": task_id, "lease_token": lease_token, "now": now_ms}

        def run(tx: Change) -> tasks.Task:
            task = self._guarded(tx, "release", params, lease=True, what="release")
            self._event(tx, task, "release", now_ms)
            self._emit_task(tx, task, "task.updated")
            self._work_added(tx)
            return task

        return await self._change(run)

    async def rescue(
        self, policy: base.RescuePolicy, *, now: datetime | None = None
    ) -> list[tasks.Task]:
        now_ms = to_ms(_now(now))

        def run(tx: Change) -> list[tasks.Task]:
            rescued = []
            expired = tx.rows(self.queries["expired_leases"], {"now": now_ms, "limit": 100})
            for row in expired:
                task = task_from_row(row)
                assert task.lease_token is not None
                detail = {"worker": task.worker_id, "attempt": task.attempt}
                if task.retries < task.max_retries:
                    rescued.append(
                        self._retry_later(
                            tx,
                            task.id,
                            task.lease_token,
                            policy.error_message,
                            now_ms,
                            policy.delay_s(task.retries),
                            "rescue",
                            detail,
                        )
                    )
                else:
                    rescued.append(
                        self._fail(
                            tx,
                            task.id,
                            task.lease_token,
                            policy.error_message,
                            now_ms,
                            "rescue",
                            detail,
                        )
                    )
            return rescued

        return await self._change(run)

    async def running_leases(self, task_ids: Sequence[str]) -> dict[str, str]:
        if not task_ids:
            return {}
        params = {f"i{n}": task_id for n, task_id in enumerate(task_ids)}
        marks = ", ".join(self._placeholder(name) for name in params)
        sql = f"SELECT id, lease_token FROM tasks WHERE phase = 'running' AND id IN ({marks})"
        found = await self._read(lambda tx: tx.rows(sql, params))
        return {row["id"]: row["lease_token"] for row in found}

    # -- the user's transitions ---------------------------------------------------------------
    def _cancel(self, tx: Change, task_id: str, project_id: str | None, now_ms: int) -> tasks.Task:
        params = {"id": task_id, "project_id": project_id, "now": now_ms}
        row = self._one(tx, "cancel", params)
        if row is None:
            current = self._one(tx, "get_task", {"id": task_id, "project_id": project_id})
            if current is None:
                raise errors.NotFound("task not found")
            raise errors.InvalidTransition(f"task is {current['phase']}, it cannot be cancelled")
        task = task_from_row(row)
        self._event(tx, task, "cancel", now_ms)
        self._emit_task(tx, task, "task.updated")
        self._mirror(tx, task, now_ms)
        return task

    async def cancel(
        self, task_id: str, project_id: str | None = None, *, now: datetime | None = None
    ) -> tasks.Task:
        now_ms = to_ms(_now(now))
        return await self._change(lambda tx: self._cancel(tx, task_id, project_id, now_ms))

    async def retry(
        self, task_id: str, project_id: str | None = None, *, now: datetime | None = None
    ) -> tasks.Task:
        now_ms = to_ms(_now(now))
        params = {"id": task_id, "project_id": project_id, "now": now_ms}

        def run(tx: Change) -> tasks.Task:
            row = self._one(tx, "retry", params)
            if row is None:
                current = self._one(tx, "get_task", {"id": task_id, "project_id": project_id})
                if current is None:
                    raise errors.NotFound("task not found")
                raise errors.InvalidTransition("task is not in a retryable state")
            task = task_from_row(row)
            self._event(tx, task, "retry", now_ms)
            self._emit_task(tx, task, "task.updated")
            self._mirror(tx, task, now_ms, assets.AssetPhase.WAITING)
            self._work_added(tx)
            return task

        return await self._change(run)

    # -- assets -------------------------------------------------------------------------------
    async def get_asset(self, asset_id: str, project_id: str | None = None) -> assets.Asset:
        params = {"id": asset_id, "project_id": project_id}
        row = await self._read(lambda tx: self._one(tx, "get_asset", params))
        if row is None:
            raise errors.NotFound("Asset not found")
        return asset_from_row(row)

    async def list_assets(self, query: base.Query) -> base.Page[assets.Asset]:
        found, total, after = await self._read(self._page("assets", query, ASSET_FIELDS))
        items = [asset_from_row(row) for row in found]
        return base.Page(items=items, total=total, next_after=after)

    async def delete_asset(
        self, asset_id: str, project_id: str, *, now: datetime | None = None
    ) -> assets.Asset:
        now_ms = to_ms(_now(now))
        params = {"id": asset_id, "project_id": project_id, "now": now_ms}

        def run(tx: Change) -> assets.Asset:
            row = self._one(tx, "delete_asset", params)
            if row is None:
                raise errors.NotFound("Asset not found")
            tx.emit("asset.deleted", "asset", row)
            for task_row in tx.rows(self.queries["active_tasks_of_asset"], {"asset_id": asset_id}):
                self._cancel(tx, task_row["id"], project_id, now_ms)
            return asset_from_row(row)

        return await self._change(run)
