"""The PostgreSQL backend: the scaled shape's task store, shared by every API and worker process.

Claims use ``FOR UPDATE SKIP LOCKED``, so any number of workers claim at once without blocking
each other.  A transaction that makes work runnable sends ``NOTIFY mediatasks_work``; idle workers
``LISTEN`` on one connection of their own and claim within milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from mediatasks import errors
from mediatasks.taskstore import queries as named
from mediatasks.taskstore import sqlstore

__all__ = ["PostgresTaskStore"]

_T = TypeVar("_T")
_CHANNEL = "mediatasks_work"
#: A ping that got no answer in this time gives its connection up (a new ping opens another).
_PING_GIVE_UP_S = 10.0


class _Tx:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        cursor = self._conn.cursor(row_factory=dict_row)
        cursor.execute(sql.encode(), params)
        if cursor.description is None:
            return []
        return cursor.fetchall()


class PostgresTaskStore(sqlstore.SqlTaskStore):
    """A task store in a PostgreSQL database."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = url
        self.queries = named.load_queries("postgres", "pyformat")
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
        )
        self._executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="pg")
        self._opened = False
        self._open_lock = threading.Lock()
        self._listener: psycopg.AsyncConnection[Any] | None = None
        #: The readiness checks' own connection, and the ping in flight on it.
        self._pinger: psycopg.AsyncConnection[Any] | None = None
        self._ping: asyncio.Task[None] | None = None

    def _ensure_open(self) -> None:
        # The first calls may come from several threads at once (a worker's claim and its
        # webhook sender): the pool must be opened by one of them.
        with self._open_lock:
            if not self._opened:
                try:
                    self._pool.open(wait=True, timeout=10)
                except (psycopg.Error, PoolTimeout) as exc:
                    raise errors.Unavailable(f"cannot reach PostgreSQL: {exc}") from exc
                self._opened = True

    def _in_tx(self, fn: Callable[[sqlstore.Tx], _T]) -> _T:
        self._ensure_open()
        try:
            with self._pool.connection() as conn, conn.transaction():
                return fn(_Tx(conn))
        except psycopg.errors.IntegrityError as exc:
            raise errors.Conflict(f"conflicts with existing data: {exc}") from exc
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise errors.Unavailable(f"PostgreSQL is unavailable: {exc}") from exc

    async def _call(self, fn: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _read(self, fn: Callable[[sqlstore.Tx], _T]) -> _T:
        return await self._call(lambda: self._in_tx(fn))

    async def _write(self, fn: Callable[[sqlstore.Tx], _T]) -> _T:
        return await self._call(lambda: self._in_tx(fn))

    def _placeholder(self, name: str) -> str:
        return f"%({name})s"

    def _work_added(self, tx: sqlstore.Tx) -> None:
        tx.rows(self.queries["notify_work"], {})

    async def wait_for_work(self, timeout_s: float) -> None:
        # A lost listener connection degrades to polling until it can be opened again.
        try:
            if self._listener is None or self._listener.closed:
                self._listener = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=max(1, int(timeout_s))
                )
                await self._listener.execute(f"LISTEN {_CHANNEL}")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    async for _ in self._listener.notifies(stop_after=1):
                        return
        except psycopg.Error:
            if self._listener is not None:
                await self._listener.close()
                self._listener = None
            await asyncio.sleep(timeout_s)

    async def ping(self) -> None:
        # Not through the pool: a database that stopped answering would keep a pooled
        # connection (and its thread) busy per ping.  One ping runs at a time on a connection of
        # its own, and callers wait for it only as long as they choose: psycopg answers a
        # cancelled query by trying to cancel it on the server, which would hold the caller for
        # seconds when the server is the part that does not answer.
        if self._ping is None or self._ping.done():
            self._ping = asyncio.ensure_future(self._ping_once())
            # Read the outcome even when every caller stopped waiting for it.
            self._ping.add_done_callback(lambda job: job.cancelled() or job.exception())
        await asyncio.shield(self._ping)

    async def _ping_once(self) -> None:
        try:
            async with asyncio.timeout(_PING_GIVE_UP_S):
                if self._pinger is None or self._pinger.closed:
                    self._pinger = await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, connect_timeout=int(_PING_GIVE_UP_S)
                    )
                await self._pinger.execute(self.queries["ping"].encode())
        except (psycopg.Error, TimeoutError) as exc:
            await self._drop_pinger()
            # psycopg's messages span lines (a hint below the error): one line for logs.
            detail = " ".join(str(exc).split()) or f"no answer within {_PING_GIVE_UP_S:g} s"
            raise errors.Unavailable(f"PostgreSQL is unavailable: {detail}") from exc

    async def _drop_pinger(self) -> None:
        pinger, self._pinger = self._pinger, None
        if pinger is not None:
            with contextlib.suppress(psycopg.Error):
                await pinger.close()

    async def migrate(self, target: int | None = None) -> list[int]:
        def run() -> list[int]:
            self._ensure_open()
            with self._pool.connection() as conn, conn.transaction():
                # One migrator at a time, across every process that starts together.
                conn.execute("SELECT pg_advisory_xact_lock(72616)")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
                applied = []
                for version, script in named.load_migrations("postgres"):
                    if version in done or (target is not None and version > target):
                        continue
                    conn.execute(script.encode())
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                    applied.append(version)
                return applied

        return await self._call(run)

    async def close(self) -> None:
        if self._ping is not None and not self._ping.done():
            self._ping.cancel()
            await asyncio.gather(self._ping, return_exceptions=True)
        await self._drop_pinger()
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        await self._call(self._pool.close)
        self._executor.shutdown(wait=True)
