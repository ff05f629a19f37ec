"""The SQLite backend: the embedded shape's task store, one file in the data folder.

One connection, used from one thread, so calls from the event loop never block it; WAL lets other
processes read while one writes, and every write runs in ``BEGIN IMMEDIATE``, which takes the
write lock up front: a claim's SELECT and UPDATE can never interleave with another process's.
Workers in this process are woken at once; workers in other processes notice new work at their
next poll.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from mediatasks import errors
from mediatasks.taskstore import queries as named
from mediatasks.taskstore import sqlstore

__all__ = ["SqliteTaskStore"]

_T = TypeVar("_T")


class _Tx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        cursor = self._conn.execute(sql, params)
        if cursor.description is None:
            return []
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class SqliteTaskStore(sqlstore.SqlTaskStore):
    """A task store in one SQLite file."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = path
        self.queries = named.load_queries("sqlite", "named")
        self._busy_timeout_s = busy_timeout_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None
        self._work = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._conn = conn
        return self._conn

    def _in_tx(self, fn: Callable[[sqlstore.Tx], _T], begin: str) -> _T:
        try:
            conn = self._connection()
            conn.execute(begin)
        except (sqlite3.Error, OSError) as exc:
            raise errors.Unavailable(f"the task database is unavailable: {exc}") from exc
        try:
            result = fn(_Tx(conn))
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError):
                raise errors.Conflict(f"conflicts with existing data: {exc}") from exc
            if isinstance(exc, sqlite3.OperationalError):
                raise errors.Unavailable(f"the task database is unavailable: {exc}") from exc
            raise
        return result

    async def _call(self, fn: Callable[[], _T]) -> _T:
        self._loop = asyncio.get_running_loop()
        return await self._loop.run_in_executor(self._executor, fn)

    async def _read(self, fn: Callable[[sqlstore.Tx], _T]) -> _T:
        return await self._call(lambda: self._in_tx(fn, "BEGIN"))

    async def _write(self, fn: Callable[[sqlstore.Tx], _T]) -> _T:
        return await self._call(lambda: self._in_tx(fn, "BEGIN IMMEDIATE"))

    def _placeholder(self, name: str) -> str:
        return f":{name}"

    def _work_added(self, tx: sqlstore.Tx) -> None:
        # Runs in the database thread; the event belongs to the loop.  Setting it a moment
        # before the commit is harmless: a woken worker whose claim finds nothing waits again.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._work.set)

    async def wait_for_work(self, timeout_s: float) -> None:
        try:
            await asyncio.wait_for(self._work.wait(), timeout_s)
        except TimeoutError:
            return
        self._work.clear()

    async def migrate(self, target: int | None = None) -> list[int]:
        def run() -> list[int]:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
                )
                done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
                applied = []
                for version, script in named.load_migrations("sqlite"):
                    if version in done or (target is not None and version > target):
                        continue
                    for statement in _statements(script):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (?, datetime('now'))", (version,)
                    )
                    applied.append(version)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return applied

        return await self._call(run)

    async def close(self) -> None:
        def run() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._call(run)
        self._executor.shutdown(wait=True)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (sqlite3 runs one at a time inside a transaction)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
