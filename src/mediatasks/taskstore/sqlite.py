"""The SQLite backend: the embedded shape's task store, one file in the data folder.

Statements run on the event loop itself: a SQLite statement on a local file takes microseconds,
far less than a hop into a thread and back, and the worker's batched statements keep them few.
What could block the loop for long is kept off it:

- **Lock waits.** The connections never wait inside SQLite (no busy timeout): a write that finds
  another process holding the write lock yields to the loop and tries again, for up to
  ``timeout_s`` in all, and then raises ``Unavailable`` (an API request answers 503, it does not
  hang).
- **fsync.** WAL with ``synchronous = NORMAL`` does not sync at commit, only at checkpoints, and
  the connections do not checkpoint by themselves: a thread of this store checkpoints once a
  second on a connection of its own.

Reads and writes have a connection each, so a read never queues behind a write waiting for the
lock.  WAL lets other processes read while one writes, and every write runs in ``BEGIN
IMMEDIATE``, which takes the write lock up front: a claim's SELECT and UPDATE can never interleave
with another process's.  Workers in this process are woken at once; workers in other processes
notice new work at their next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from mediatasks import errors
from mediatasks.taskstore import queries as named
from mediatasks.taskstore import sqlstore

__all__ = ["SqliteTaskStore"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: Waits between attempts to take a lock that another connection holds.
_FIRST_WAIT_S = 0.001
_LONGEST_WAIT_S = 0.05
#: How often the WAL is checkpointed into the database file.
_CHECKPOINT_S = 1.0


class _Tx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        cursor = self._conn.execute(sql, params)
        if cursor.description is None:
            return []
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    async def run(self, sql: str, params: Mapping[str, Any]) -> None:
        self._conn.execute(sql, params)


class _Busy(Exception):
    """Another connection holds the lock that a transaction needs."""


def _busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class SqliteTaskStore(sqlstore.SqlTaskStore):
    """A task store in one SQLite file."""

    def __init__(self, path: Path, *, timeout_s: float = 1.5) -> None:
        super().__init__()
        self.path = path
        self.timeout_s = timeout_s
        self.queries = named.load_queries("sqlite", "named")
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        self._work = asyncio.Event()
        self._checkpointer: asyncio.Task[None] | None = None
        #: The checkpoint connection lives in one thread of its own and is used and closed only
        #: there: a checkpoint still running when the store closes finishes before the close,
        #: never beside it.
        self._checkpoint_thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sqlite-checkpoint"
        )
        self._checkpoint_conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.create_function("gen_random_uuid", 0, lambda: str(uuid.uuid4()))
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self, write: bool) -> sqlite3.Connection:
        if write:
            if self._writer is None:
                self._writer = self._connect()
                if self._checkpointer is None:
                    self._checkpointer = asyncio.get_running_loop().create_task(
                        self._checkpoints(), name="sqlite checkpoints"
                    )
            return self._writer
        if self._reader is None:
            self._reader = self._connect()
        return self._reader

    async def _in_tx(self, fn: Callable[[sqlstore.Tx], Awaitable[_T]], write: bool) -> _T:
        lock = self._write_lock if write else self._read_lock
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        wait_s = _FIRST_WAIT_S
        async with lock:
            while True:
                try:
                    return await self._attempt(fn, write)
                except _Busy as exc:
                    if loop.time() + wait_s > deadline:
                        raise errors.Unavailable(
                            f"the task database stayed locked for {self.timeout_s:g} s"
                        ) from exc
                await asyncio.sleep(wait_s)
                wait_s = min(_LONGEST_WAIT_S, wait_s * 2)

    async def _attempt(self, fn: Callable[[sqlstore.Tx], Awaitable[_T]], write: bool) -> _T:
        """One try of the transaction; ``_Busy`` when another connection holds the lock, before
        anything was written."""
        try:
            conn = self._connection(write)
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            if _busy(exc):
                raise _Busy from exc
            raise errors.Unavailable(f"the task database is unavailable: {exc}") from exc
        except OSError as exc:
            raise errors.Unavailable(f"the task database is unavailable: {exc}") from exc
        try:
            result = await fn(_Tx(conn))
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError):
                raise errors.Conflict(f"conflicts with existing data: {exc}") from exc
            if isinstance(exc, sqlite3.Error):
                # A read takes its snapshot at its first statement, which may meet a busy
                # database: it is tried again.  A write holds the lock from BEGIN IMMEDIATE on.
                if not write and _busy(exc):
                    raise _Busy from exc
                raise errors.Unavailable(f"the task database is unavailable: {exc}") from exc
            raise
        return result

    async def _read(self, fn: Callable[[sqlstore.Tx], Awaitable[_T]]) -> _T:
        return await self._in_tx(fn, write=False)

    async def _write(
        self,
        fn: Callable[[sqlstore.Tx], Awaitable[_T]],
        *,
        late: Callable[[_T], Awaitable[None]] | None = None,
    ) -> _T:
        # A transaction here is never given up on half way: ``late`` is never needed.
        return await self._in_tx(fn, write=True)

    def _placeholder(self, name: str) -> str:
        return f":{name}"

    async def _wake(self, tx: sqlstore.Tx) -> None:
        # Set a moment before the commit, on the loop that commits: a woken worker runs after it.
        self._work.set()

    async def wait_for_work(self, timeout_s: float) -> None:
        try:
            await asyncio.wait_for(self._work.wait(), timeout_s)
        except TimeoutError:
            return
        self._work.clear()

    async def _checkpoints(self) -> None:
        """Checkpoint the WAL in a thread, once a second, so that no fsync runs on the loop."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_CHECKPOINT_S)
            await loop.run_in_executor(self._checkpoint_thread, self._checkpoint)

    def _checkpoint(self) -> None:
        """One checkpoint (in the checkpoint thread)."""
        try:
            if self._checkpoint_conn is None:
                self._checkpoint_conn = self._connect()
            self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.debug("checkpoint skipped: %s", exc)

    def _close_checkpoint_conn(self) -> None:
        """Close the checkpoint connection (in the checkpoint thread, after any checkpoint)."""
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None

    async def migrate(self, target: int | None = None) -> list[int]:
        async def run(tx: sqlstore.Tx) -> list[int]:
            await tx.run(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
                {},
            )
            done = {
                row["version"] for row in await tx.rows("SELECT version FROM schema_migrations", {})
            }
            applied = []
            for version, script in named.load_migrations("sqlite"):
                if version in done or (target is not None and version > target):
                    continue
                for statement in _statements(script):
                    await tx.run(statement, {})
                await tx.run(
                    "INSERT INTO schema_migrations VALUES (:v, datetime('now'))", {"v": version}
                )
                applied.append(version)
            return applied

        return await self._write(run)

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        await asyncio.get_running_loop().run_in_executor(
            self._checkpoint_thread, self._close_checkpoint_conn
        )
        async with self._write_lock, self._read_lock:
            for conn in (self._reader, self._writer):
                if conn is not None:
                    conn.close()
            self._reader = self._writer = None


def _statements(script: str) -> list[str]:
    """Split a migration into statements (sqlite3 runs one at a time inside a transaction)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
