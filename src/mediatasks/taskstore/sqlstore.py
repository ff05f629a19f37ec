"""The transactions of the task store, shared by the SQLite and PostgreSQL backends.

A backend module (``sqlite.py``, ``postgres.py``) supplies a connection, a transaction, its named
queries and its way of waking workers; everything that decides *what* a transition writes lives
here, once.  Every transition appends its ``task_events`` rows and its webhook outbox rows inside
its own transaction, in one statement each, however many tasks it moves (``Change`` collects
them; ``SqlTaskStore._flush`` writes them).

The worker's hot path is batched: ``claim`` moves up to ``limit`` tasks in one statement,
``complete_many`` completes a batch of tasks in one, and ``beat`` extends every lease a worker
holds (and tells which it still holds) in one.  Outbox rows are only written for events that a
live webhook of the task's project subscribes to, and a task event's payload is built by the
database from the task's row, so an unwatched project costs no outbox rows at all.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
#: Registry rows of workers not seen for this long are forgotten.
_FORGET_WORKERS_MS = 24 * 3600 * 1000


@dataclasses.dataclass
class _ClaimCursor:
    """Where a store's next claim of some task types starts its scan of the runnable tasks.

    A claimed task leaves its entry in PostgreSQL's runnable index until a vacuum removes it, so
    a claim that scans from the oldest ``run_at`` walks past every task claimed since the last
    vacuum: on a long backlog each claim got slower, and throughput halved in 40 s.  A claim
    therefore starts at the newest ``run_at`` that the previous claim took, less ``MARGIN_MS``
    (tasks created side by side commit a little out of order).  The scan from the oldest runs
    when that one finds fewer tasks than asked for (for the rest), after a claim that found
    none, and at least every ``FULL_EVERY_S``: a task that is runnable but behind the cursor (an
    older ``run_at`` that committed late, a creator's clock behind) waits at most that long.
    """

    MARGIN_MS = 500
    FULL_EVERY_S = 1.0
    #: ``from_run_at`` of a scan from the oldest.
    OLDEST = -(2**62)

    newest: int | None = None
    full_at: float = float("-inf")

    def start(self, clock: float) -> int:
        """The ``from_run_at`` of the next claim."""
        if self.newest is None or clock - self.full_at >= self.FULL_EVERY_S:
            return self.OLDEST
        return self.newest - self.MARGIN_MS

    def moved(self, claimed: Sequence[tasks.Task], clock: float, *, from_oldest: bool) -> None:
        """Record a committed claim that took ``claimed``, and scanned from the oldest if
        ``from_oldest`` (first, or for the rest)."""
        if from_oldest:
            self.full_at = clock
        if not claimed:
            self.newest = None
            return
        newest = max(to_ms(task.run_at) for task in claimed)
        self.newest = newest if self.newest is None else max(self.newest, newest)


class Tx(Protocol):
    """One open transaction, as the shared code sees it."""

    async def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run ``sql`` and return its rows as dicts (empty for statements without rows)."""
        ...

    async def run(self, sql: str, params: Mapping[str, Any]) -> None:
        """Run ``sql`` whose result nobody reads (a backend may send it with the next one)."""
        ...


_JSON_COLUMNS = frozenset({"params", "output", "source", "options", "media", "storage", "data"})


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class Change:
    """A write transaction that also collects the task events and webhook events it causes.

    ``SqlTaskStore._flush`` writes them just before the commit, one statement for each kind, so an
    event exists exactly when its change does.  Task events and task webhook events name the task
    only: the database reads the task's row as the transaction leaves it.
    """

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        #: ``task_events`` rows: ``{"task_id", "name", "data"}``.
        self.task_events: list[dict[str, Any]] = []
        #: Webhook events about tasks: ``{"task_id", "name", "success"?}``.
        self.task_outbox: list[dict[str, Any]] = []
        #: Webhook events with a payload made here: ``{"project_id", "name", "payload",
        #: "task_id"?}``.
        self.outbox: list[dict[str, Any]] = []
        #: Whether the change made tasks runnable now (idle workers are woken).
        self.wakes = False

    async def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return await self.tx.rows(sql, params)

    async def run(self, sql: str, params: Mapping[str, Any]) -> None:
        await self.tx.run(sql, params)

    def wake(self) -> None:
        """Wake idle workers once this change commits: it made tasks runnable now."""
        self.wakes = True

    def event(self, task_id: str, name: str, data: Mapping[str, Any] | None = None) -> None:
        """Append ``name`` to the task's event log (with the task's phase and progress)."""
        self.task_events.append({"task_id": task_id, "name": name, "data": dict(data or {})})

    def emit_task(self, task_id: str, *names: str, success: bool | None = None) -> None:
        """Webhook events ``names`` about the task; ``success`` goes on all but ``task.updated``."""
        for name in names:
            entry: dict[str, Any] = {"task_id": task_id, "name": name}
            if success is not None and name != "task.updated":
                entry["success"] = success
            self.task_outbox.append(entry)

    def emit(
        self,
        name: str,
        kind: str,
        row: Mapping[str, Any],
        *,
        success: bool | None = None,
        task_id: str | None = None,
    ) -> None:
        """Record webhook event ``name`` about ``row`` (an asset row, as it is now); ``task_id``
        names the task whose change caused it (its page lists the event's deliveries)."""
        plain = {
            key: json.loads(value) if key in _JSON_COLUMNS and isinstance(value, str) else value
            for key, value in row.items()
        }
        payload: dict[str, Any] = {"kind": kind, "row": plain}
        if success is not None:
            payload["success"] = success
        entry = {"project_id": str(row["project_id"]), "name": name, "payload": payload}
        if task_id is not None:
            entry["task_id"] = task_id
        self.outbox.append(entry)


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _shows_asset(task: tasks.Task) -> bool:
    """Whether the task's answer shows its output asset: a task completed with an output."""
    return bool(task.output_asset_id and task.output)


def _needs_follow_up(row: Mapping[str, Any]) -> bool:
    """Whether a task's transition also moves an asset (its output, or the one it exports)."""
    return row["output_asset_id"] is not None or (
        row["type"] == tasks.TaskType.EXPORT and row["input_asset_id"] is not None
    )


def _event_from_row(row: Mapping[str, Any]) -> tasks.TaskEvent:
    return tasks.TaskEvent(
        id=row["id"],
        task_id=row["task_id"],
        project_id=row["project_id"],
        name=row["name"],
        phase=tasks.Phase(row["phase"]),
        progress=row["progress"],
        at=from_ms(row["at"]),
        data=load_json(row["data"]),
    )


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

    def __init__(self) -> None:
        self._claim_cursors: dict[tuple[str, ...], _ClaimCursor] = {}

    # -- what a backend supplies --------------------------------------------------------------
    @abc.abstractmethod
    async def _read(self, fn: Callable[[Tx], Awaitable[_T]]) -> _T:
        """Run ``fn`` in a read transaction."""

    @abc.abstractmethod
    async def _write(
        self,
        fn: Callable[[Tx], Awaitable[_T]],
        *,
        late: Callable[[_T], Awaitable[None]] | None = None,
    ) -> _T:
        """Run ``fn`` in a write transaction, committed when it returns.

        A backend that gives up waiting for a transaction (``Unavailable``) may not know whether
        it committed: with ``late``, it lets the transaction finish and gives ``late`` its result
        when it did.
        """

    @abc.abstractmethod
    def _placeholder(self, name: str) -> str:
        """How a parameter called ``name`` is written in this dialect's SQL."""

    @abc.abstractmethod
    async def _wake(self, tx: Tx) -> None:
        """Wake idle workers: called at the end of a transaction that made tasks runnable now."""

    def _json(self, value: Any) -> Any:
        """A Python value as the driver takes it for a JSON column."""
        return _dumps(value)

    async def _change(
        self,
        fn: Callable[[Change], Awaitable[_T]],
        *,
        late: Callable[[_T], Awaitable[None]] | None = None,
    ) -> _T:
        """Run ``fn`` in a write transaction and write the events it collected."""

        async def run(tx: Tx) -> _T:
            change = Change(tx)
            result = await fn(change)
            await self._flush(change)
            return result

        return await self._write(run, late=late)

    async def _flush(self, change: Change) -> None:
        """Write what ``change`` collected: one statement where the dialect can say it all in
        one (``insert_changes``), else one for each kind."""
        if not (change.task_events or change.task_outbox or change.outbox or change.wakes):
            return
        params = {
            "events": _dumps(change.task_events),
            "task_outbox": _dumps(change.task_outbox),
            "outbox": _dumps(change.outbox),
            "wake": change.wakes,
            "now": to_ms(datetime.now(UTC)),
        }
        if "insert_changes" in self.queries:
            await change.run(self.queries["insert_changes"], params)
            return
        if change.task_events:
            await change.run(self.queries["insert_task_events"], params)
        if change.task_outbox:
            await change.run(self.queries["insert_task_outbox"], params)
        if change.outbox:
            await change.run(self.queries["insert_outbox"], params)
        if change.wakes:
            await self._wake(change)

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
    async def _one(self, tx: Tx, name: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        found = await tx.rows(self.queries[name], params)
        return found[0] if found else None

    async def _mirror(
        self,
        tx: Change,
        task: tasks.Task,
        now_ms: int,
        phase: assets.AssetPhase | None = None,
    ) -> None:
        """Make the task's output asset follow the task's phase (and an export's input asset)."""
        await self._follow_export(tx, task, now_ms)
        phase = phase or assets.mirror_phase(task.phase)
        if task.output_asset_id is None or phase is None:
            return
        progress = 0.0 if phase is assets.AssetPhase.PROCESSING else None
        error_message = task.error_message if phase is assets.AssetPhase.FAILED else None
        changed = await self._one(
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
            self._emit_asset(tx, changed, task.id)

    def _emit_asset(self, tx: Change, row: Mapping[str, Any], task_id: str) -> None:
        """The webhook events of an asset that the change of task ``task_id`` moved."""
        tx.emit("asset.updated", "asset", row, task_id=task_id)
        phase = row["phase"]
        if phase in ("ready", "failed"):
            tx.emit(f"asset.{phase}", "asset", row, task_id=task_id)

    async def _guarded(
        self,
        tx: Tx,
        query: str,
        params: Mapping[str, Any],
        *,
        lease: bool,
        what: str,
    ) -> tasks.Task:
        """Run a guarded transition; raise if it matched no row."""
        row = await self._one(tx, query, params)
        if row is None:
            raise await self._refused(tx, params["id"], lease=lease, what=what)
        return task_from_row(row)

    async def _refused(
        self, tx: Tx, task_id: str, *, lease: bool, what: str
    ) -> errors.MediaTasksError:
        """Why a guarded transition of ``task_id`` matched no row."""
        current = await self._one(tx, "get_task", {"id": task_id, "project_id": None})
        if current is None:
            return errors.NotFound(f"task {task_id} not found")
        phase = current["phase"]
        if lease:
            return errors.LeaseLost(
                f"cannot {what} task {task_id}: the lease is no longer held (the task is {phase})"
            )
        return errors.InvalidTransition(f"cannot {what} a task that is {phase}")

    def _page(
        self, table: str, query: base.Query, allowed: frozenset[str]
    ) -> Callable[[Tx], Awaitable[tuple[list[dict[str, Any]], int | None, tuple[Any, ...] | None]]]:
        """A page of ``table`` (``taskstore.listing`` builds its SQL), its total when asked
        for, and where the next page starts."""
        sql = listing.build(
            table,
            query,
            allowed,
            self._placeholder,
            extra_where="phase <> 'deleted'" if table == "assets" else "",
        )

        async def run(tx: Tx) -> tuple[list[dict[str, Any]], int | None, tuple[Any, ...] | None]:
            found, after = listing.next_key(await tx.rows(sql.select, sql.params), sql, query.limit)
            total = (
                (await tx.rows(sql.count, sql.count_params))[0]["n"] if query.with_total else None
            )
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
    async def _insert_task(self, tx: Change, new: base.NewTask, now_ms: int) -> tasks.Task:
        row = await self._one(
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
        tx.event(task.id, "created", {"type": task.type})
        tx.emit_task(task.id, "task.spawned")
        if task.phase is tasks.Phase.WAITING:
            tx.wake()
        return task

    async def create_task(self, new: base.NewTask, *, now: datetime | None = None) -> tasks.Task:
        now_ms = to_ms(_now(now))
        return await self._change(lambda tx: self._insert_task(tx, new, now_ms))

    async def create_asset(
        self, asset: base.NewAsset, task: base.NewTask, *, now: datetime | None = None
    ) -> tuple[assets.Asset, tasks.Task]:
        now_ms = to_ms(_now(now))

        async def run(tx: Change) -> tuple[assets.Asset, tasks.Task]:
            return await self._insert_asset(tx, asset, task, now_ms)

        return await self._change(run)

    async def create_url_import(
        self,
        asset: base.NewAsset,
        task: base.NewTask,
        *,
        url: str,
        since: datetime,
        now: datetime | None = None,
    ) -> tuple[assets.Asset, tasks.Task, bool]:
        now_ms = to_ms(_now(now))

        async def run(tx: Change) -> tuple[assets.Asset, tasks.Task, bool]:
            # Two imports of one URL at once: the second waits here for the first to commit,
            # then finds it.
            await tx.rows(
                self.queries["lock_url_import"], {"project_id": asset.project_id, "url": url}
            )
            found = await self._recent_url_import(tx, asset.project_id, url, since)
            if found is not None:
                return asset_from_row(found[0]), task_from_row(found[1]), False
            return (*await self._insert_asset(tx, asset, task, now_ms), True)

        return await self._change(run)

    async def _insert_asset(
        self, tx: Change, asset: base.NewAsset, task: base.NewTask, now_ms: int
    ) -> tuple[assets.Asset, tasks.Task]:
        row = await self._one(
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
        created = await self._insert_task(tx, task, now_ms)
        tx.emit("asset.created", "asset", row, task_id=created.id)
        return asset_from_row(row), created

    async def schedule(self, task_id: str, *, now: datetime | None = None) -> tasks.Task:
        now_ms = to_ms(_now(now))

        async def run(tx: Change) -> tasks.Task:
            task = await self._guarded(
                tx, "schedule", {"id": task_id, "now": now_ms}, lease=False, what="schedule"
            )
            tx.event(task.id, "schedule")
            tx.emit_task(task.id, "task.updated")
            await self._mirror(tx, task, now_ms, assets.AssetPhase.WAITING)
            tx.wake()
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

    async def view_task(self, task_id: str, project_id: str | None = None) -> base.TaskView:
        params = {"id": task_id, "project_id": project_id}

        async def run(tx: Tx) -> base.TaskView:
            row = await self._one(tx, "get_task", params)
            if row is None:
                raise errors.NotFound("task not found")
            task = task_from_row(row)
            asset = None
            if _shows_asset(task):
                found = await self._one(
                    tx, "get_asset", {"id": task.output_asset_id, "project_id": None}
                )
                asset = None if found is None else asset_from_row(found)
            return base.TaskView(
                task=task, output_asset=asset, queue_position=await self._position(tx, task)
            )

        return await self._read(run)

    async def view_tasks(self, query: base.Query) -> base.Page[base.TaskView]:
        page = self._page("tasks", query, TASK_FIELDS)

        async def run(tx: Tx) -> base.Page[base.TaskView]:
            found, total, after = await page(tx)
            items = [task_from_row(row) for row in found]
            wanted = sorted({str(t.output_asset_id) for t in items if _shows_asset(t)})
            shown = {}
            if wanted:
                params = {"ids": _dumps(wanted)}
                shown = {
                    row["id"]: asset_from_row(row)
                    for row in await tx.rows(self.queries["assets_by_id"], params)
                }
            views = [
                base.TaskView(
                    task=task,
                    output_asset=shown.get(str(task.output_asset_id)),
                    queue_position=await self._position(tx, task),
                )
                for task in items
            ]
            return base.Page(items=views, total=total, next_after=after)

        return await self._read(run)

    async def _position(self, tx: Tx, task: tasks.Task) -> int | None:
        """The queue position of a waiting task (``None`` for any other)."""
        if task.phase is not tasks.Phase.WAITING:
            return None
        params = {"run_at": to_ms(task.run_at), "id": task.id}
        row = await self._one(tx, "queue_position", params)
        return int(row["n"]) if row else 1

    async def list_events(
        self, task_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[tasks.TaskEvent]:
        params = {"task_id": task_id, "after_id": after_id, "limit": limit}
        found = await self._read(lambda tx: tx.rows(self.queries["list_events"], params))
        return [_event_from_row(row) for row in found]

    async def list_project_events(
        self, project_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[tasks.TaskEvent]:
        params = {"project_id": project_id, "after_id": after_id, "limit": limit}
        found = await self._read(lambda tx: tx.rows(self.queries["list_project_events"], params))
        return [_event_from_row(row) for row in found]

    async def last_event_id(self, project_id: str) -> int:
        params = {"project_id": project_id}
        row = await self._read(lambda tx: self._one(tx, "last_event_id", params))
        return int(row["n"]) if row is not None else 0

    async def count_tasks_by_phase(
        self, project_id: str, *, types: Sequence[str] = ()
    ) -> Mapping[tasks.Phase, int]:
        params: dict[str, Any] = {"project_id": project_id}
        sql = self.queries["count_project_tasks"]
        if types:
            marks = []
            for i, task_type in enumerate(types):
                params[f"t{i}"] = task_type
                marks.append(self._placeholder(f"t{i}"))
            sql = sql.replace("1 = 1", f"type IN ({', '.join(marks)})")
        found = await self._read(lambda tx: tx.rows(sql, params))
        counts = dict.fromkeys(tasks.Phase, 0)
        counts.update({tasks.Phase(row["phase"]): int(row["n"]) for row in found})
        return counts

    async def count_tasks(self, phase: tasks.Phase | None = None) -> int:
        params = {"phase": None if phase is None else str(phase)}
        row = await self._read(lambda tx: self._one(tx, "count_tasks", params))
        assert row is not None
        return int(row["n"])

    async def queue_depth(
        self, project_id: str | None = None
    ) -> Mapping[tuple[str, tasks.Phase], int]:
        params = {"project_id": project_id}
        found = await self._read(lambda tx: tx.rows(self.queries["queue_depth"], params))
        return {(row["type"], tasks.Phase(row["phase"])): int(row["n"]) for row in found}

    async def finished_counts(
        self, project_id: str, *, since: datetime, until: datetime, interval_s: int = 60
    ) -> list[base.FinishedCount]:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        since_ms, until_ms, interval_ms = to_ms(since), to_ms(until), interval_s * 1000
        params = {
            "project_id": project_id,
            "since": since_ms,
            "until": until_ms,
            "interval_ms": interval_ms,
        }
        found = await self._read(lambda tx: tx.rows(self.queries["finished_counts"], params))
        counts: dict[tuple[int, str], int] = {
            (int(row["slot"]), str(row["phase"])): int(row["n"]) for row in found
        }
        slots = max(0, -(-(until_ms - since_ms) // interval_ms))
        return [
            base.FinishedCount(
                start=from_ms(since_ms + slot * interval_ms),
                completed=counts.get((slot, "completed"), 0),
                failed=counts.get((slot, "failed"), 0),
            )
            for slot in range(slots)
        ]

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
        # Each claimed task gets the event "claim" ({"worker", "attempt"}) and "task.updated";
        # a dialect that can write them in the claim's own statement does.
        event, outbox = "claim", ["task.updated"]
        in_one = "claim_with_changes" in self.queries
        sql = self.queries["claim_with_changes" if in_one else "claim"]
        sql = sql.replace("{types}", ", ".join(names))
        params.update(event=event, task_outbox=_dumps(outbox))

        cursor = self._claim_cursors.setdefault(tuple(types), _ClaimCursor())
        clock = time.monotonic()
        start = cursor.start(clock)

        from_oldest = start == _ClaimCursor.OLDEST  # as the committed run of ``run`` scanned

        async def run(tx: Change) -> list[tasks.Task]:
            nonlocal from_oldest
            from_oldest = start == _ClaimCursor.OLDEST
            rows = await tx.rows(sql, {**params, "from_run_at": start})
            if not from_oldest and len(rows) < limit:
                rest = {**params, "from_run_at": _ClaimCursor.OLDEST, "limit": limit - len(rows)}
                rows += await tx.rows(sql, rest)
                from_oldest = True
            claimed = [task_from_row(row) for row in rows]
            for task in claimed:
                if not in_one:
                    tx.event(task.id, event, {"worker": worker_id, "attempt": task.attempt})
                    tx.emit_task(task.id, *outbox)
                if task.output_asset_id is not None or task.type == tasks.TaskType.EXPORT:
                    await self._mirror(tx, task, now_ms)
            return claimed

        # A claim given up on that commits after all would leave its tasks held by nobody until
        # their leases expire: hand them back at once instead.
        claimed = await self._change(run, late=self._release_all)
        cursor.moved(claimed, clock, from_oldest=from_oldest)
        return claimed

    async def _release_all(self, claimed: list[tasks.Task]) -> None:
        for task in claimed:
            assert task.lease_token is not None
            try:
                await self.release(task.id, task.lease_token)
            except errors.MediaTasksError:
                pass  # it expires with its lease instead

    async def beat(
        self,
        worker_id: str,
        held: Mapping[str, str],
        *,
        lease_s: float,
        now: datetime | None = None,
    ) -> set[str]:
        moment = _now(now)
        params = {
            "worker_id": worker_id,
            "held": _dumps([{"id": key, "token": token} for key, token in held.items()]),
            "now": to_ms(moment),
            "lease_expires_at": to_ms(moment + timedelta(seconds=lease_s)),
        }

        async def run(tx: Tx) -> set[str]:
            await tx.run(self.queries["worker_seen"], params)
            if not held:
                return set()
            return {row["id"] for row in await tx.rows(self.queries["extend_leases"], params)}

        return await self._beat_write(run)

    async def _beat_write(self, fn: Callable[[Tx], Awaitable[_T]]) -> _T:
        """Where a worker's beat runs: a backend may tie it to the worker's session."""
        return await self._write(fn)

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

        async def run(tx: Change) -> tasks.Task:
            task = await self._guarded(tx, "heartbeat", params, lease=True, what="heartbeat")
            if progress is not None and task.progress == params["progress"]:
                tx.event(task.id, "progress")
                if announce:
                    tx.emit_task(task.id, "task.updated")
                    await self._follow_export(tx, task, now_ms)
                if task.output_asset_id is not None:
                    changed = await self._one(
                        tx,
                        "asset_progress",
                        {"id": task.output_asset_id, "progress": task.progress, "now": now_ms},
                    )
                    if changed is not None and announce:
                        self._emit_asset(tx, changed, task.id)
            return task

        return await self._change(run)

    async def _complete(
        self, tx: Change, done: Sequence[base.Completion], now_ms: int
    ) -> list[str]:
        """``running -> completed`` for each of ``done`` whose lease is held; their ids."""
        by_id = {item.task_id: item for item in done}
        batch = [
            {"id": item.task_id, "token": item.lease_token, "output": dict(item.output)}
            for item in done
        ]
        params = {"batch": _dumps(batch), "now": now_ms}
        found = await tx.rows(self.queries["complete_many"], params)
        for row in found:
            item = by_id[row["id"]]
            tx.event(row["id"], "complete", item.detail)
            tx.emit_task(row["id"], "task.updated", "task.completed", success=True)
            if not _needs_follow_up(row):
                continue
            full = await self._one(tx, "get_task", {"id": row["id"], "project_id": None})
            assert full is not None
            task = task_from_row(full)
            await self._follow_export(tx, task, now_ms)
            if task.output_asset_id is not None:
                changed = await self._one(
                    tx,
                    "asset_ready",
                    {
                        "id": task.output_asset_id,
                        "media": self._json(dict(item.asset_media or {})),
                        "now": now_ms,
                    },
                )
                if changed is not None:
                    self._emit_asset(tx, changed, task.id)
                    await self._export_when_ready(tx, changed, task, now_ms)
        return [row["id"] for row in found]

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
        item = base.Completion(
            task_id=task_id,
            lease_token=lease_token,
            output=output,
            asset_media=asset_media,
            detail=detail,
        )

        async def run(tx: Change) -> tasks.Task:
            if not await self._complete(tx, [item], now_ms):
                raise await self._refused(tx, task_id, lease=True, what="complete")
            row = await self._one(tx, "get_task", {"id": task_id, "project_id": None})
            assert row is not None
            return task_from_row(row)

        return await self._change(run)

    async def complete_many(
        self, done: Sequence[base.Completion], *, now: datetime | None = None
    ) -> set[str]:
        if not done:
            return set()
        now_ms = to_ms(_now(now))

        async def run(tx: Change) -> set[str]:
            return set(await self._complete(tx, done, now_ms))

        return await self._change(run)

    async def _fail(
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
        task = await self._guarded(tx, "fail", params, lease=True, what="fail")
        tx.event(task.id, event, {"error": error_message, **(detail or {})})
        tx.emit_task(task.id, "task.updated", "task.failed", success=False)
        await self._mirror(tx, task, now_ms)
        return task

    async def _retry_later(
        self,
        tx: Change,
        task_id: str,
        lease_token: str,
        error_message: str,
        now_ms: int,
        delay_s: float,
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
        task = await self._guarded(tx, "retry_later", params, lease=True, what="retry")
        data = {"error": error_message, "retryAt": run_at, **(detail or {})}
        tx.event(task.id, "retry_later", data)
        tx.emit_task(task.id, "task.updated")
        if delay_s <= 0:
            tx.wake()
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
                tx, task_id, lease_token, error_message, now_ms, delay_s, detail
            )
        )

    async def release(
        self, task_id: str, lease_token: str, *, now: datetime | None = None
    ) -> tasks.Task:
        now_ms = to_ms(_now(now))
        params = {"id": task_id, "lease_token": lease_token, "now": now_ms}

        async def run(tx: Change) -> tasks.Task:
            task = await self._guarded(tx, "release", params, lease=True, what="release")
            tx.event(task.id, "release")
            tx.emit_task(task.id, "task.updated")
            tx.wake()
            return task

        return await self._change(run)

    # -- rescue and the worker registry -----------------------------------------------------------
    async def rescue(
        self,
        policy: base.RescuePolicy,
        *,
        dead_workers: Sequence[str] = (),
        now: datetime | None = None,
    ) -> list[tasks.Task]:
        moment = _now(now)
        now_ms = to_ms(moment)
        params = {
            "now": now_ms,
            "stale": now_ms - int(policy.silent_s * 1000),
            "dead": _dumps(list(dead_workers)),
            "limit": 100,
        }

        async def run(tx: Change) -> list[tasks.Task]:
            rescued = []
            for row in await tx.rows(self.queries["lost_tasks"], params):
                task = task_from_row(row)
                assert task.lease_token is not None
                because = str(row["lost_because"])
                rescued.append(await self._rescue_one(tx, task, policy, now_ms, because))
            if dead_workers:
                await tx.run(self.queries["workers_stopped"], params)
            await tx.run(self.queries["forget_workers"], {"before": now_ms - _FORGET_WORKERS_MS})
            return rescued

        return await self._change(run)

    async def _rescue_one(
        self, tx: Change, task: tasks.Task, policy: base.RescuePolicy, now_ms: int, because: str
    ) -> tasks.Task:
        """Take back a task whose worker is gone: again at once, or failed when it keeps
        losing its workers.  The task's own retries are not spent: the input is not at fault."""
        assert task.lease_token is not None
        detail = {"worker": task.worker_id, "attempt": task.attempt, "because": because}
        if task.rescues >= policy.max_rescues:
            message = f"{policy.error_message} ({task.rescues + 1} times)"
            return await self._fail(
                tx, task.id, task.lease_token, message, now_ms, "rescue", detail
            )
        params = {
            "id": task.id,
            "lease_token": task.lease_token,
            "error_message": policy.error_message,
            "now": now_ms,
        }
        rescued = await self._guarded(tx, "rescue_later", params, lease=True, what="rescue")
        tx.event(rescued.id, "rescue", {"error": policy.error_message, "retryAt": now_ms, **detail})
        tx.emit_task(rescued.id, "task.updated")
        tx.wake()
        return rescued

    async def running_leases(self, task_ids: Sequence[str]) -> dict[str, str]:
        if not task_ids:
            return {}
        params = {f"i{n}": task_id for n, task_id in enumerate(task_ids)}
        marks = ", ".join(self._placeholder(name) for name in params)
        sql = f"SELECT id, lease_token FROM tasks WHERE phase = 'running' AND id IN ({marks})"
        found = await self._read(lambda tx: tx.rows(sql, params))
        return {row["id"]: row["lease_token"] for row in found}

    async def register_worker(
        self, worker: base.WorkerIdentity, *, now: datetime | None = None
    ) -> None:
        lock_key = secrets.randbits(62)
        params = {
            "id": worker.id,
            "host": worker.host,
            "node": worker.node,
            "pid": worker.pid,
            "lock_key": lock_key,
            "now": to_ms(_now(now)),
        }
        await self._write(lambda tx: tx.run(self.queries["register_worker"], params))
        await self._hold_session(worker.id, lock_key)

    async def _hold_session(self, worker_id: str, lock_key: int) -> None:
        """Tie the worker's liveness to a database session, where the backend has one."""

    async def _drop_session(self, worker_id: str) -> None:
        """Let the worker's session go."""

    async def deregister_worker(self, worker_id: str, *, now: datetime | None = None) -> None:
        params = {"id": worker_id, "now": to_ms(_now(now))}
        try:
            await self._write(lambda tx: tx.run(self.queries["deregister_worker"], params))
        finally:
            await self._drop_session(worker_id)

    async def list_workers(self, seen_since: datetime) -> list[base.WorkerRecord]:
        params = {"since": to_ms(seen_since)}

        async def run(tx: Tx) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            workers = await tx.rows(self.queries["list_workers"], params)
            running = await tx.rows(self.queries["running_of_workers"], params)
            return workers, running

        workers, running = await self._read(run)
        by_worker: dict[str, list[base.RunningTask]] = {}
        for row in running:
            by_worker.setdefault(row["worker_id"], []).append(
                base.RunningTask(
                    id=row["id"],
                    project_id=row["project_id"],
                    type=row["type"],
                    progress=row["progress"],
                    started_at=maybe_from_ms(row["started_at"]),
                )
            )
        return [
            base.WorkerRecord(
                id=row["id"],
                host=row["host"],
                node=row["node"],
                pid=row["pid"],
                started_at=from_ms(row["started_at"]),
                last_seen_at=from_ms(row["last_seen_at"]),
                stopped_at=maybe_from_ms(row["stopped_at"]),
                running=tuple(by_worker.get(row["id"], ())),
            )
            for row in workers
        ]

    # -- the user's transitions ---------------------------------------------------------------
    async def _cancel(
        self, tx: Change, task_id: str, project_id: str | None, now_ms: int
    ) -> tasks.Task:
        params = {"id": task_id, "project_id": project_id, "now": now_ms}
        row = await self._one(tx, "cancel", params)
        if row is None:
            current = await self._one(tx, "get_task", {"id": task_id, "project_id": project_id})
            if current is None:
                raise errors.NotFound("task not found")
            raise errors.InvalidTransition(f"task is {current['phase']}, it cannot be cancelled")
        task = task_from_row(row)
        tx.event(task.id, "cancel")
        tx.emit_task(task.id, "task.updated")
        await self._mirror(tx, task, now_ms)
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

        async def run(tx: Change) -> tasks.Task:
            row = await self._one(tx, "retry", params)
            if row is None:
                current = await self._one(tx, "get_task", {"id": task_id, "project_id": project_id})
                if current is None:
                    raise errors.NotFound("task not found")
                if current["phase"] in (tasks.Phase.FAILED, tasks.Phase.CANCELLED):
                    raise errors.InvalidTransition(
                        "the asset of this task was deleted: the task cannot run again"
                    )
                raise errors.InvalidTransition("task is not in a retryable state")
            task = task_from_row(row)
            tx.event(task.id, "retry")
            tx.emit_task(task.id, "task.updated")
            await self._mirror(tx, task, now_ms, assets.AssetPhase.WAITING)
            tx.wake()
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

        async def run(tx: Change) -> assets.Asset:
            if "lock_active_tasks_of_asset" in self.queries:
                # The tasks first, then their asset: the order of the tasks' own transitions.
                # (A dialect whose write transactions never overlap has no such query.)
                lock = {"asset_id": asset_id, "project_id": project_id}
                await tx.rows(self.queries["lock_active_tasks_of_asset"], lock)
            row = await self._one(tx, "delete_asset", params)
            if row is None:
                raise errors.NotFound("Asset not found")
            tx.emit("asset.deleted", "asset", row)
            # Read again: a task may have become unfinished since (a retry that committed).
            active = await tx.rows(self.queries["active_tasks_of_asset"], {"asset_id": asset_id})
            for task_row in active:
                await self._cancel(tx, task_row["id"], project_id, now_ms)
            return asset_from_row(row)

        return await self._change(run)
