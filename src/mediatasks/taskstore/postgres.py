"""The PostgreSQL backend: the scaled shape's task store, shared by every API and worker process.

psycopg 3's asynchronous driver on the event loop, with a pool of connections (no thread per
call).  Reads run one statement each, in autocommit; a write transaction writes its event log,
outbox rows and wake-up in one statement (``insert_changes``), so a worker's claim or batch of
completions is ``BEGIN``, one statement, that one and ``COMMIT``.  (Pipeline mode was measured
slower on loopback: its synchronisation costs more than the round trips it saves.)

Claims use ``FOR UPDATE SKIP LOCKED``, so any number of workers claim at once without blocking
each other.  A transaction that makes work runnable sends ``NOTIFY mediatasks_work``; idle workers
``LISTEN`` on one connection of their own and claim within milliseconds.  Each worker holds an
advisory lock on a session of its own, which the server lets go when the worker's process dies:
the rescuer tells a dead worker from a slow one by that lock.

Outages: every call has ``timeout_s`` in all (waiting for a connection, connecting, the round
trips) and then raises ``Unavailable``; a call that hangs on a server that stopped answering is
left to finish in the background rather than waited for.  A pooled connection that the server
closed while it was idle is noticed before use (its socket is readable), and makes the pool drop
every idle one: after a restart or an outage, the first call reconnects instead of meeting each
dead connection in turn.  Waiting in line for a connection is not an outage while other calls are
being answered (a burst); it is once none has been for ``timeout_s``.  Nor is a deadlock: a write
transaction that PostgreSQL rolled back to break one (or for a serialization failure) runs again,
within the call's time, and one that keeps meeting them raises ``Conflict``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import select
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from mediatasks import errors
from mediatasks.taskstore import queries as named
from mediatasks.taskstore import sqlstore

__all__ = ["PostgresTaskStore"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_CHANNEL = "mediatasks_work"
#: How long a call may wait in line for a connection while other calls are being answered.
_QUEUE_S = 30.0
#: A ping that got no answer in this time gives its connection up (a new ping opens another).
_PING_GIVE_UP_S = 10.0
#: How many times a write transaction runs again after PostgreSQL rolled it back to break a
#: deadlock or a serialization failure.
_RERUNS = 2


class _Tx:
    """A transaction (or, for reads, an autocommit connection) as the shared code sees it."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        cursor = self._conn.cursor(row_factory=dict_row)
        await cursor.execute(sql.encode(), params)
        if cursor.description is None:
            return []
        return await cursor.fetchall()

    async def run(self, sql: str, params: Mapping[str, Any]) -> None:
        await self._conn.cursor().execute(sql.encode(), params)


def _unavailable(exc: BaseException) -> errors.Unavailable:
    return errors.Unavailable(f"PostgreSQL is unavailable: {exc}")


class PostgresTaskStore(sqlstore.SqlTaskStore):
    """A task store in a PostgreSQL database."""

    def __init__(self, url: str, *, pool_size: int = 8, timeout_s: float = 1.5) -> None:
        super().__init__()
        self.url = url
        self.timeout_s = timeout_s
        self.queries = named.load_queries("postgres", "pyformat")
        self._connect_timeout = max(2, round(timeout_s))
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=timeout_s,
            # Give up reconnecting in the background soon: the next call that needs a connection
            # starts again at once, so a store that comes back is used within a call's time.
            reconnect_timeout=2 * timeout_s,
            kwargs={"autocommit": True, "connect_timeout": self._connect_timeout},
            check=self._check_connection,
        )
        self._opened = False
        self._opening: asyncio.Lock | None = None
        #: Calls that did not answer in time, left to finish (and clean up) on their own.
        self._abandoned: set[asyncio.Future[Any]] = set()
        #: When a call last got an answer from the server (the event loop's clock).
        self._answered_at = 0.0
        self._listener: psycopg.AsyncConnection[Any] | None = None
        #: The worker's own session: it holds the worker's advisory lock and runs its beats.
        self._session: psycopg.AsyncConnection[Any] | None = None
        self._session_lock = asyncio.Lock()
        self._lock_key: int | None = None
        self._session_locked = False
        #: The readiness checks' own connection, and the ping in flight on it.
        self._pinger: psycopg.AsyncConnection[Any] | None = None
        self._ping: asyncio.Task[None] | None = None

    # -- connections ------------------------------------------------------------------------
    async def _check_connection(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Refuse a pooled connection that the server closed while it was idle.

        An idle connection has nothing to read: if its socket is readable, the server sent it an
        end (a restart, a terminated backend, a reset).  This costs no round trip, and cannot
        hang on a server that stopped answering (the call's own time limit covers that).
        """
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
        if not readable:
            return
        await conn.close()
        # Its idle neighbours are most likely gone too: drop them all now, rather than letting
        # one call after another find out.
        draining = asyncio.ensure_future(self._pool.drain())
        self._abandoned.add(draining)
        draining.add_done_callback(self._abandoned.discard)
        raise psycopg.OperationalError("the server closed this idle connection")

    async def _ensure_open(self) -> None:
        if self._opened:
            return
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if not self._opened:
                await self._pool.open(wait=False)
                self._opened = True

    async def _bounded(self, work: Coroutine[Any, Any, _T]) -> _T:
        """``work`` within ``timeout_s``, or ``Unavailable``; a late ``work`` finishes alone.

        Cancelling a query on a server that does not answer can take psycopg seconds of its own
        (it asks the server to cancel, then waits); the caller gets its answer now instead.
        """
        job = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait({job}, timeout=self.timeout_s)
        except asyncio.CancelledError:
            job.cancel()
            raise
        if job in done:
            return job.result()
        job.cancel()
        self._abandoned.add(job)
        job.add_done_callback(self._abandoned.discard)
        raise errors.Unavailable(f"PostgreSQL did not answer within {self.timeout_s:g} s")

    async def _getconn(self) -> psycopg.AsyncConnection[Any]:
        """A pooled connection.  Waiting in line while other calls get answers is fine (a burst
        of calls); waiting ``timeout_s`` while none does is an outage."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _QUEUE_S
        while True:
            asked = loop.time()
            try:
                return await self._pool.getconn(timeout=self.timeout_s)
            except PoolTimeout as exc:
                if self._answered_at < asked or loop.time() >= deadline:
                    raise _unavailable(exc) from exc

    def _give_back(self, conn: psycopg.AsyncConnection[Any], job: asyncio.Future[Any]) -> None:
        """Return ``conn`` to the pool once the abandoned ``job`` that uses it has ended."""
        returning = asyncio.ensure_future(self._pool.putconn(conn))
        self._abandoned.add(returning)
        returning.add_done_callback(self._abandoned.discard)

    async def _on(
        self,
        conn: psycopg.AsyncConnection[Any],
        fn: Callable[[psycopg.AsyncConnection[Any]], Awaitable[_T]],
    ) -> _T:
        try:
            result = await fn(conn)
        except psycopg.errors.IntegrityError as exc:
            self._answered_at = asyncio.get_running_loop().time()
            raise errors.Conflict(f"conflicts with existing data: {exc}") from exc
        except psycopg.errors.QueryCanceled as exc:
            raise _unavailable(exc) from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise _unavailable(exc) from exc
        self._answered_at = asyncio.get_running_loop().time()
        return result

    async def _use(
        self,
        fn: Callable[[psycopg.AsyncConnection[Any]], Awaitable[_T]],
        late: Callable[[_T], Awaitable[None]] | None = None,
    ) -> _T:
        """Run ``fn`` on a pooled connection within ``timeout_s``, else ``Unavailable``.

        A call given up on is cancelled (psycopg asks the server to cancel it), unless ``late``
        is given: then it runs to its end, and ``late`` gets its result if it succeeded.
        """
        await self._ensure_open()
        conn = await self._getconn()
        job = asyncio.ensure_future(self._on(conn, fn))
        try:
            done, _ = await asyncio.wait({job}, timeout=self.timeout_s)
        except asyncio.CancelledError:
            job.cancel()
            job.add_done_callback(functools.partial(self._give_back, conn))
            raise
        if job not in done:
            if late is None:
                job.cancel()
            else:
                job.add_done_callback(functools.partial(self._hand_late, late))
            job.add_done_callback(functools.partial(self._give_back, conn))
            raise errors.Unavailable(f"PostgreSQL did not answer within {self.timeout_s:g} s")
        await self._pool.putconn(conn)
        return job.result()

    def _hand_late(self, late: Callable[[Any], Awaitable[None]], job: asyncio.Future[Any]) -> None:
        if job.cancelled() or job.exception() is not None:
            return
        handing = asyncio.ensure_future(late(job.result()))
        self._abandoned.add(handing)
        handing.add_done_callback(self._abandoned.discard)

    async def _read(self, fn: Callable[[sqlstore.Tx], Awaitable[_T]]) -> _T:
        async def run(conn: psycopg.AsyncConnection[Any]) -> _T:
            return await fn(_Tx(conn))

        return await self._use(run)

    async def _write(
        self,
        fn: Callable[[sqlstore.Tx], Awaitable[_T]],
        *,
        late: Callable[[_T], Awaitable[None]] | None = None,
    ) -> _T:
        return await self._use(functools.partial(self._transaction, fn=fn), late)

    async def _transaction(
        self, conn: psycopg.AsyncConnection[Any], fn: Callable[[sqlstore.Tx], Awaitable[_T]]
    ) -> _T:
        """``fn`` in a transaction on ``conn``, run again on a new one (up to ``_RERUNS`` times)
        when PostgreSQL rolled it back to break a deadlock or a serialization failure.

        That is safe: each ``fn`` of the shared code builds what it writes inside itself (its
        ``Change``, its rows), and nothing it did survives the rollback.  The reruns count in
        the call's ``timeout_s``.  A change that still clashes after them raises ``Conflict``
        (try again): concurrent changes got in its way, the server is not unavailable.
        """
        reruns = 0
        while True:
            try:
                async with conn.transaction():
                    return await fn(_Tx(conn))
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
                reason = exc.diag.message_primary or exc.sqlstate
                if reruns >= _RERUNS:
                    self._answered_at = asyncio.get_running_loop().time()
                    raise errors.Conflict(
                        f"concurrent changes kept clashing with this one ({reason}, "
                        f"{reruns + 1} times): try again"
                    ) from exc
                reruns += 1
                log.info("running a transaction again: PostgreSQL rolled it back (%s)", reason)

    def _placeholder(self, name: str) -> str:
        return f"%({name})s"

    async def _wake(self, tx: sqlstore.Tx) -> None:
        # Delivered when the transaction commits.
        await tx.run(self.queries["notify_work"], {})

    # -- waking workers ---------------------------------------------------------------------
    async def wait_for_work(self, timeout_s: float) -> None:
        # A lost listener connection degrades to polling until it can be opened again.
        try:
            async with asyncio.timeout(timeout_s):
                if self._listener is None or self._listener.closed:
                    self._listener = await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, connect_timeout=self._connect_timeout
                    )
                    await self._listener.execute(f"LISTEN {_CHANNEL}".encode())
                async for _ in self._listener.notifies(stop_after=1):
                    return
        except TimeoutError:
            return
        except psycopg.Error:
            await self._close_listener()
            await asyncio.sleep(timeout_s)

    async def _close_listener(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            with contextlib.suppress(psycopg.Error):
                await listener.close()

    # -- readiness ---------------------------------------------------------------------------
    async def ping(self) -> None:
        # Not through the pool: a database that stopped answering would keep a pooled
        # connection busy per ping.  One ping runs at a time on a connection of its own, and
        # callers wait for it only as long as they choose: psycopg answers a cancelled query by
        # trying to cancel it on the server, which would hold the caller for seconds when the
        # server is the part that does not answer.
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

    # -- the worker's session -----------------------------------------------------------------
    async def _hold_session(self, worker_id: str, lock_key: int) -> None:
        self._lock_key = lock_key
        with contextlib.suppress(errors.Unavailable):
            await self._bounded(self._with_session(lambda conn: asyncio.sleep(0)))

    async def _drop_session(self, worker_id: str) -> None:
        self._lock_key = None
        async with self._session_lock:
            session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(psycopg.Error):
                await session.close()

    async def _with_session(
        self, fn: Callable[[psycopg.AsyncConnection[Any]], Awaitable[_T]]
    ) -> _T:
        """Run ``fn`` on the worker's session, (re)connecting it and taking its lock first."""
        async with self._session_lock:
            try:
                if self._session is None or self._session.closed:
                    self._session = await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, connect_timeout=self._connect_timeout
                    )
                    self._session_locked = False
                session = self._session
                if not self._session_locked and self._lock_key is not None:
                    found = await session.execute(
                        b"SELECT pg_try_advisory_lock(%s)", (self._lock_key,)
                    )
                    row = await found.fetchone()
                    self._session_locked = bool(row and row[0])
                return await fn(session)
            except BaseException:
                # Keep a session that still works (a beat given up on that psycopg cancelled):
                # closing it would let go of the worker's lock, and make it look dead.
                if self._session is not None and (self._session.closed or self._session.broken):
                    broken, self._session = self._session, None
                    with contextlib.suppress(psycopg.Error):
                        await broken.close()
                raise

    async def _beat_write(self, fn: Callable[[sqlstore.Tx], Awaitable[_T]]) -> _T:
        if self._lock_key is None:
            return await self._write(fn)

        async def work() -> _T:
            try:
                return await self._with_session(functools.partial(self._transaction, fn=fn))
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                raise _unavailable(exc) from exc

        return await self._bounded(work())

    # -- life of the store --------------------------------------------------------------------
    async def migrate(self, target: int | None = None) -> list[int]:
        async def run(conn: psycopg.AsyncConnection[Any]) -> list[int]:
            async with conn.transaction():
                # One migrator at a time, across every process that starts together.
                await conn.execute(b"SELECT pg_advisory_xact_lock(72616)")
                await conn.execute(
                    b"CREATE TABLE IF NOT EXISTS schema_migrations "
                    b"(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                found = await conn.execute(b"SELECT version FROM schema_migrations")
                done = {row[0] for row in await found.fetchall()}
                applied = []
                for version, script in named.load_migrations("postgres"):
                    if version in done or (target is not None and version > target):
                        continue
                    await conn.execute(script.encode())
                    await conn.execute(
                        b"INSERT INTO schema_migrations (version) VALUES (%s)", (version,)
                    )
                    applied.append(version)
                return applied

        # Migrations may take long: only reaching the server is bounded.
        await self._ensure_open()
        try:
            async with self._pool.connection(timeout=max(10.0, self.timeout_s)) as conn:
                return await run(conn)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise errors.Unavailable(f"cannot reach PostgreSQL: {exc}") from exc

    async def close(self) -> None:
        if self._ping is not None and not self._ping.done():
            self._ping.cancel()
            await asyncio.gather(self._ping, return_exceptions=True)
        await self._drop_pinger()
        await self._close_listener()
        await self._drop_session("")
        for job in list(self._abandoned):
            job.cancel()
        if self._opened:
            await self._pool.close()
