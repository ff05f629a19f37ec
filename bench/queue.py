"""Queue benchmark: no-op throughput and pickup latency of the task store, next to procrastinate
and PgQueuer.

Run it from the repository root (PostgreSQL must be reachable; SQLite needs nothing)::

    .venv/bin/python bench/queue.py
    .venv/bin/python bench/queue.py --backends postgres procrastinate --tasks 20000
    .venv/bin/python bench/queue.py --help

What it measures, for each backend asked for (``sqlite``, ``postgres``: mediatasks on SQLite and on
PostgreSQL; ``procrastinate`` and ``pgqueuer``: those queues on the same PostgreSQL server):

Throughput
    ``--tasks`` no-op tasks are enqueued first (their insertion is timed on its own), the
    database is ``ANALYZE``d (as autovacuum would have done in a live database), then the
    workers start.  The clock runs from the start of the workers until no task is waiting or
    running.  mediatasks runs the real ``Worker`` with ``handlers.registry()`` in this process,
    and optionally ``--processes`` ``python -m mediatasks worker`` processes (PostgreSQL only);
    procrastinate runs ``App.run_worker_async`` in this process; both get ``--concurrency``.
    PgQueuer runs ``--pgqueuer-consumers`` ``QueueManager``s (asyncpg) in this process, each
    dequeuing ``--pgqueuer-batch`` jobs at a time: its fastest shape on this machine.
    Afterwards the database is checked: exactly ``--tasks`` tasks completed, each claimed once.

Pickup latency
    With the workers idle, ``--samples`` tasks are enqueued one at a time, ``--spacing-ms`` apart.
    A sample is the time from the return of the enqueue call (its transaction committed) to the
    start of the handler, both read with ``time.perf_counter()`` in this process.

Every database is created for the run (``mt_bench_<pid>_<n>``, ``procrastinate_bench_<pid>_<n>``)
and dropped at the end, with the temporary folder, also on Ctrl-C or an error.  Nothing else is
written.  The SQL in this file only watches and checks the tables (and runs ``ANALYZE``); the
benchmark drives mediatasks through its public ``TaskStore`` and ``Worker``.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path, and this file, being called
# queue.py, would hide the standard library's ``queue`` (which psycopg imports).
if sys.path and os.path.realpath(sys.path[0] or ".") == os.path.dirname(os.path.realpath(__file__)):
    sys.path.pop(0)

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import datetime
import io
import logging
import platform
import pstats
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg

import mediatasks
from mediatasks import settings as settings_module
from mediatasks import tasks, taskstore
from mediatasks.blobstore import local as local_blobs
from mediatasks.worker import handler, handlers, loop, outcome

BACKENDS = ("sqlite", "postgres", "procrastinate", "pgqueuer")
#: How often the throughput clock looks whether the work is done.
POLL_S = 0.02
#: Tasks enqueued and awaited before the latency samples, to open connections and LISTEN.
WARMUP_SAMPLES = 5


# -- results ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True)
class Throughput:
    """One throughput run."""

    system: str
    workers: str
    tasks: int
    insert_s: float
    insert_how: str
    run_s: float
    checked: str

    @property
    def insert_per_s(self) -> float:
        return self.tasks / self.insert_s

    @property
    def per_s(self) -> float:
        return self.tasks / self.run_s


@dataclasses.dataclass(frozen=True, kw_only=True)
class Latency:
    """One pickup-latency run: samples in seconds."""

    system: str
    wake: str
    samples: Sequence[float]

    def quantile_ms(self, q: float) -> float:
        ordered = sorted(self.samples)
        index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
        return ordered[index] * 1000


class BenchError(Exception):
    """A run that could not finish: a time-out, a worker process that died or never started."""


# -- databases and folders -------------------------------------------------------------------
def _with_db(url: str, name: str) -> str:
    return urllib.parse.urlsplit(url)._replace(path=f"/{name}").geturl()


class PgDatabases:
    """Creates databases for the run on the server of ``admin_url`` and drops every one of them."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []
        self._count = 0

    async def create(self, prefix: str) -> str:
        """A new, empty database; its URL."""
        self._count += 1
        name = f"{prefix}_{os.getpid()}_{self._count}"
        async with await psycopg.AsyncConnection.connect(self.admin_url, autocommit=True) as conn:
            await conn.execute(f'CREATE DATABASE "{name}"'.encode())
        self.created.append(name)
        return _with_db(self.admin_url, name)

    @contextlib.asynccontextmanager
    async def database(self, prefix: str) -> AsyncIterator[str]:
        """A new database for the block, dropped after it."""
        url = await self.create(prefix)
        try:
            yield url
        finally:
            await self.drop(urllib.parse.urlsplit(url).path.lstrip("/"))

    async def drop(self, name: str) -> None:
        async with await psycopg.AsyncConnection.connect(self.admin_url, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        self.created.remove(name)

    async def drop_all(self) -> None:
        """Drop what is left (after an error or Ctrl-C)."""
        if not self.created:
            return
        async with await psycopg.AsyncConnection.connect(self.admin_url, autocommit=True) as conn:
            while self.created:
                name = self.created.pop()
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


class ReadBack:
    """A connection of the benchmark's own, to watch and check a run without using the store."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pg: psycopg.AsyncConnection[Any] | None = None
        self._sqlite: sqlite3.Connection | None = None

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.url.startswith("sqlite:///"):
            return await asyncio.to_thread(self._sqlite_rows, sql)
        if self._pg is None:
            self._pg = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        cursor = await self._pg.execute(sql.encode())
        return await cursor.fetchall() if cursor.description is not None else []

    async def analyze(self) -> None:
        """Refresh the planner's statistics, as autovacuum keeps them fresh in a live database.

        Without this, a table that was empty when last analyzed and just got thousands of rows
        may be read with a poor plan: procrastinate's fetch then runs at about half speed.
        """
        await self.rows("ANALYZE")

    def _sqlite_rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self._sqlite is None:
            path = self.url.removeprefix("sqlite:///")
            self._sqlite = sqlite3.connect(path, check_same_thread=False)
        return self._sqlite.execute(sql).fetchall()  # ANALYZE commits by itself

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
        if self._sqlite is not None:
            self._sqlite.close()


def _stopped(job: asyncio.Task[Any]) -> Callable[[], str | None]:
    """A ``dead`` check for ``_wait_until``: why ``job`` (a worker) ended, if it did."""

    def check() -> str | None:
        if not job.done():
            return None
        exc = None if job.cancelled() else job.exception()
        return f"{job.get_name()} stopped: {exc!r}"

    return check


async def _wait_until(
    check: Callable[[], Awaitable[bool]],
    timeout_s: float,
    what: str,
    dead: Callable[[], str | None] = lambda: None,
) -> float:
    """Poll ``check`` every ``POLL_S``; the ``perf_counter()`` at which it first held.

    ``dead`` says why waiting is pointless (a worker died), so that a broken run fails at once
    rather than at its time-out.
    """
    deadline = time.perf_counter() + timeout_s
    while True:
        if await check():
            return time.perf_counter()
        if (reason := dead()) is not None:
            raise BenchError(f"while waiting for {what}: {reason}")
        if time.perf_counter() > deadline:
            raise BenchError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(POLL_S)


# -- mediatasks ------------------------------------------------------------------------------
def _mt_settings(url: str, data_dir: Path, concurrency: int) -> settings_module.Settings:
    return settings_module.Settings(
        data_dir=data_dir, database_url=url, concurrency=concurrency, environment="development"
    )


@contextlib.asynccontextmanager
async def _mt_store(url: str) -> AsyncIterator[taskstore.TaskStore]:
    store = taskstore.open_task_store(url)
    try:
        await store.migrate()
        yield store
    finally:
        await store.close()


async def _mt_insert(store: taskstore.TaskStore, project_id: str, count: int) -> float:
    """Enqueue ``count`` no-op tasks with ``create_task`` (there is no batch call); seconds."""
    new = taskstore.NewTask(project_id=project_id, type=tasks.TaskType.NOOP, params={})
    in_flight = 32  # enough to keep every pooled connection busy
    started = time.perf_counter()
    for first in range(0, count, in_flight):
        size = min(in_flight, count - first)
        await asyncio.gather(*(store.create_task(new) for _ in range(size)))
    return time.perf_counter() - started


async def _mt_all_done(readback: ReadBack) -> bool:
    # Both phases have a partial index, so this stays cheap however many tasks completed.
    found = await readback.rows("SELECT count(*) FROM tasks WHERE phase IN ('waiting', 'running')")
    return int(found[0][0]) == 0


async def _mt_check(readback: ReadBack, expected: int) -> str:
    """Whether exactly ``expected`` tasks completed, each claimed and completed once.

    Only the events that prove it are checked: others (a heartbeat's ``progress``, say) may
    come and go as the worker changes.
    """
    phases = await readback.rows(
        "SELECT phase, count(*), min(attempt), max(attempt) FROM tasks GROUP BY phase"
    )
    events = {
        row[0]: (int(row[1]), int(row[2]))
        for row in await readback.rows(
            "SELECT name, count(*), count(DISTINCT task_id) FROM task_events GROUP BY name"
        )
    }
    proof = ("created", "claim", "complete")
    if [tuple(row) for row in phases] != [("completed", expected, 1, 1)] or any(
        events.get(name) != (expected, expected) for name in proof
    ):
        return f"FAILED: phases {phases}, events {events}"
    return f"{expected} completed, each claimed once"


async def mt_throughput(
    url: str, count: int, concurrency: int, data_dir: Path, system: str
) -> Throughput:
    """Enqueue ``count`` no-op tasks, then time one in-process ``Worker`` through them."""
    readback = ReadBack(url)
    try:
        async with _mt_store(url) as store:
            project = await store.create_project("bench")
            insert_s = await _mt_insert(store, project.id, count)
            await readback.analyze()
            worker = loop.Worker(
                _mt_settings(url, data_dir, concurrency),
                store,
                local_blobs.LocalBlobStore(data_dir / "media"),
                handlers.registry(),
            )
            started = time.perf_counter()
            job = asyncio.create_task(worker.run(), name="mediatasks worker")
            try:
                done = await _wait_until(
                    lambda: _mt_all_done(readback),
                    60 + count / 50,
                    "the tasks to complete",
                    _stopped(job),
                )
            finally:
                worker.stop()
                await asyncio.gather(job, return_exceptions=True)
        checked = await _mt_check(readback, count)
    finally:
        await readback.close()
    return Throughput(
        system=system,
        workers=f"1 in-process Worker x {concurrency}",
        tasks=count,
        insert_s=insert_s,
        insert_how="create_task, 32 in flight",
        run_s=done - started,
        checked=checked,
    )


class _Worker:
    """One ``python -m mediatasks worker`` process, its stderr kept for when it fails."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.ready = asyncio.Event()
        self.log: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            if "mediatasks.worker.loop" in line and " started " in line:
                self.ready.set()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self._reader


async def mt_processes(
    url: str, count: int, processes: int, concurrency: int, data_dir: Path
) -> Throughput:
    """Time ``processes`` worker processes through ``count`` tasks, all released at once.

    The processes start while the benchmark holds a lock on ``tasks``, so their claims wait; the
    clock starts when every process is ready and the lock is let go.  Process start-up (imports,
    connecting, ``migrate``) is therefore not counted.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATASKS_")}
    env.pop("DATABASE_URL", None)
    readback = ReadBack(url)
    workers: list[_Worker] = []
    try:
        async with _mt_store(url) as store:
            project = await store.create_project("bench")
            insert_s = await _mt_insert(store, project.id, count)
        await readback.analyze()
        gate = await psycopg.AsyncConnection.connect(url)
        try:
            await gate.execute(b"LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
            for n in range(processes):
                proc_env = {
                    **env,
                    "MEDIATASKS_DATABASE_URL": url,
                    "MEDIATASKS_CONCURRENCY": str(concurrency),
                    "MEDIATASKS_DATA_DIR": str(data_dir / f"process-{n}"),
                }
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "mediatasks",
                    "worker",
                    env=proc_env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                    start_new_session=True,  # Ctrl-C reaches the benchmark, which stops them
                )
                workers.append(_Worker(proc))
            try:
                async with asyncio.timeout(60):
                    await asyncio.gather(*(w.ready.wait() for w in workers))
            except TimeoutError as exc:
                logs = "\n".join(line for w in workers for line in w.log[-20:])
                raise BenchError(f"worker processes did not start:\n{logs}") from exc
            await asyncio.sleep(0.5)  # each is now blocked in its first claim
            started = time.perf_counter()
            await gate.commit()
        finally:
            await gate.close()

        def dead() -> str | None:
            for w in workers:
                if w.proc.returncode is not None:
                    return "a worker process exited:\n" + "\n".join(w.log[-20:])
            return None

        done = await _wait_until(
            lambda: _mt_all_done(readback), 60 + count / 50, "the tasks to complete", dead
        )
        if (reason := dead()) is not None:
            raise BenchError(reason)
        checked = await _mt_check(readback, count)
    finally:
        await asyncio.gather(*(w.stop() for w in workers))
        await readback.close()
    return Throughput(
        system="mediatasks PostgreSQL",
        workers=f"{processes} process{'es' if processes != 1 else ''} x {concurrency}",
        tasks=count,
        insert_s=insert_s,
        insert_how="create_task, 32 in flight",
        run_s=done - started,
        checked=checked,
    )


class _Probe:
    """A handler that notes when it starts: the latency probe."""

    def __init__(self, started: dict[str, float]) -> None:
        self.started = started

    async def run(self, ctx: handler.Context) -> outcome.Complete:
        self.started[ctx.task.id] = time.perf_counter()
        return outcome.Complete(output={})


async def mt_latency(
    url: str, samples: int, spacing_s: float, concurrency: int, data_dir: Path, system: str
) -> Latency:
    """Pickup latency of an idle in-process ``Worker``.

    On SQLite the producer shares the worker's store, as the API and the worker do in the
    embedded shape (that is the only way a SQLite worker is woken rather than polling).  On
    PostgreSQL the producer has a store of its own, as an API process would, and the worker is
    woken by ``NOTIFY``.
    """
    started: dict[str, float] = {}
    returned: dict[str, float] = {}
    async with contextlib.AsyncExitStack() as stack:
        store = await stack.enter_async_context(_mt_store(url))
        producer = store
        if not url.startswith("sqlite:///"):
            producer = await stack.enter_async_context(_mt_store(url))
        project = await producer.create_project("bench")
        worker = loop.Worker(
            _mt_settings(url, data_dir, concurrency),
            store,
            local_blobs.LocalBlobStore(data_dir / "media"),
            {tasks.TaskType.NOOP: _Probe(started)},
        )
        job = asyncio.create_task(worker.run(), name="mediatasks worker")
        try:

            async def enqueue(n: int) -> str:
                new = taskstore.NewTask(
                    project_id=project.id, type=tasks.TaskType.NOOP, params={"sample": n}
                )
                task = await producer.create_task(new)
                returned[task.id] = time.perf_counter()
                return task.id

            ids = await _spaced(enqueue, samples, spacing_s, started, _stopped(job))
        finally:
            worker.stop()
            await asyncio.gather(job, return_exceptions=True)
    wake = "in-process event" if url.startswith("sqlite:///") else "LISTEN/NOTIFY"
    return Latency(system=system, wake=wake, samples=[started[i] - returned[i] for i in ids])


async def _spaced(
    enqueue: Callable[[int], Awaitable[Any]],
    samples: int,
    spacing_s: float,
    started: dict[Any, float],
    dead: Callable[[], str | None],
) -> list[Any]:
    """Enqueue warm-up tasks, then ``samples`` tasks ``spacing_s`` apart; the sampled keys."""
    for n in range(WARMUP_SAMPLES):
        key = await enqueue(-1 - n)
        await _wait_until(lambda key=key: _true(key in started), 30, "a warm-up task", dead)
    keys = []
    next_at = time.perf_counter()
    for n in range(samples):
        next_at += spacing_s
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        keys.append(await enqueue(n))
    await _wait_until(
        lambda: _true(all(k in started for k in keys)), 60, "the samples to start", dead
    )
    return keys


async def _true(value: bool) -> bool:
    return value


# -- procrastinate ---------------------------------------------------------------------------
class _Procrastinate:
    """A procrastinate app on ``url`` with a no-op task and a latency probe."""

    def __init__(self, url: str, pool_size: int) -> None:
        import procrastinate

        self.ran = 0
        self.started: dict[int, float] = {}
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=url, max_size=pool_size)
        )

        @self.app.task(name="noop")
        async def noop() -> None:
            self.ran += 1

        @self.app.task(name="probe")
        async def probe(sample: int) -> None:
            self.started[sample] = time.perf_counter()

        self.noop = noop
        self.probe = probe

    @contextlib.asynccontextmanager
    async def worker(self, concurrency: int) -> AsyncIterator[Callable[[], str | None]]:
        """A worker running in this process for the duration of the block."""
        job = asyncio.create_task(
            self.app.run_worker_async(
                concurrency=concurrency,
                listen_notify=True,
                install_signal_handlers=False,
                wait=True,
            ),
            name="procrastinate worker",
        )
        try:
            yield _stopped(job)
        finally:
            job.cancel()  # procrastinate's documented way to stop a worker run this way
            with contextlib.suppress(asyncio.CancelledError):
                await job


async def procrastinate_throughput(
    url: str, count: int, concurrency: int, pool_size: int
) -> Throughput:
    """Enqueue ``count`` no-op jobs with ``batch_defer_async``, then time a worker through them."""
    bench = _Procrastinate(url, pool_size)
    readback = ReadBack(url)
    try:
        async with bench.app.open_async():
            await bench.app.schema_manager.apply_schema_async()
            chunk = 1000
            insert_started = time.perf_counter()
            for first in range(0, count, chunk):
                await bench.noop.batch_defer_async(*({} for _ in range(min(chunk, count - first))))
            insert_s = time.perf_counter() - insert_started
            await readback.analyze()

            async def all_done() -> bool:
                found = await readback.rows(
                    "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
                )
                return int(found[0][0]) == 0

            started = time.perf_counter()
            async with bench.worker(concurrency) as dead:
                done = await _wait_until(all_done, 60 + count / 50, "the jobs to complete", dead)
        statuses = await readback.rows(
            "SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status"
        )
        events = await readback.rows(
            "SELECT type::text, count(*), count(DISTINCT job_id) FROM procrastinate_events "
            "GROUP BY type"
        )
        want_events = {(name, count, count) for name in ("deferred", "started", "succeeded")}
        checked = f"{count} succeeded, each started once"
        if (
            [tuple(r) for r in statuses] != [("succeeded", count)]
            or {tuple(r) for r in events} != want_events
            or bench.ran != count
        ):
            checked = f"FAILED: statuses {statuses}, events {events}, ran {bench.ran}"
    finally:
        await readback.close()
    return Throughput(
        system="procrastinate",
        workers=f"1 in-process worker x {concurrency}",
        tasks=count,
        insert_s=insert_s,
        insert_how="batch_defer_async, 1000 a call",
        run_s=done - started,
        checked=checked,
    )


async def procrastinate_latency(
    url: str, samples: int, spacing_s: float, concurrency: int, pool_size: int
) -> Latency:
    """Pickup latency of an idle procrastinate worker, woken by ``LISTEN/NOTIFY``."""
    bench = _Procrastinate(url, pool_size)
    returned: dict[int, float] = {}
    async with bench.app.open_async():
        await bench.app.schema_manager.apply_schema_async()
        async with bench.worker(concurrency) as dead:

            async def enqueue(n: int) -> int:
                await bench.probe.defer_async(sample=n)
                returned[n] = time.perf_counter()
                return n

            keys = await _spaced(enqueue, samples, spacing_s, bench.started, dead)
    return Latency(
        system="procrastinate",
        wake="LISTEN/NOTIFY",
        samples=[bench.started[k] - returned[k] for k in keys],
    )


# -- PgQueuer ------------------------------------------------------------------------------
class _PgQueuer:
    """PgQueuer on ``url``: ``consumers`` ``QueueManager``s in this process, each on an asyncpg
    connection of its own, with a no-op entrypoint and a latency probe (its fastest shape here:
    two consumers dequeuing batches of 50)."""

    def __init__(self, url: str, consumers: int) -> None:
        self.url = url
        self.consumers = consumers
        self.ran = 0
        self.started: dict[int, float] = {}
        self._connections: list[Any] = []
        self.managers: list[Any] = []

    async def __aenter__(self) -> _PgQueuer:
        import asyncpg
        from pgqueuer import QueueManager
        from pgqueuer.queries import Queries

        for _ in range(self.consumers + 1):
            self._connections.append(await asyncpg.connect(self.url))
        await Queries.from_asyncpg_connection(self._connections[0]).install()
        self.queries = Queries.from_asyncpg_connection(self._connections[0])
        for conn in self._connections[1:]:
            manager = QueueManager(Queries.from_asyncpg_connection(conn))

            @manager.entrypoint("noop")
            async def noop(job: Any) -> None:
                self.ran += 1

            @manager.entrypoint("probe")
            async def probe(job: Any) -> None:
                self.started[int(job.payload.decode())] = time.perf_counter()

            self.managers.append(manager)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in self._connections:
            await conn.close()

    @contextlib.asynccontextmanager
    async def worker(self, batch_size: int) -> AsyncIterator[Callable[[], str | None]]:
        """Every consumer running in this process for the duration of the block."""
        jobs = [
            asyncio.create_task(manager.run(batch_size=batch_size), name="pgqueuer consumer")
            for manager in self.managers
        ]

        def dead() -> str | None:
            for job in jobs:
                if (reason := _stopped(job)()) is not None:
                    return reason
            return None

        try:
            yield dead
        finally:
            for manager in self.managers:
                manager.shutdown.set()
            await asyncio.gather(*jobs, return_exceptions=True)


async def pgqueuer_throughput(url: str, count: int, consumers: int, batch_size: int) -> Throughput:
    """Enqueue ``count`` no-op jobs (one batch ``enqueue`` call per 1,000), then time PgQueuer's
    consumers through them."""
    readback = ReadBack(url)
    try:
        async with _PgQueuer(url, consumers) as bench:
            chunk = 1000
            insert_started = time.perf_counter()
            for first in range(0, count, chunk):
                size = min(chunk, count - first)
                await bench.queries.enqueue(["noop"] * size, [None] * size, [0] * size)
            insert_s = time.perf_counter() - insert_started
            await readback.analyze()

            async def all_done() -> bool:
                found = await readback.rows("SELECT count(*) FROM pgqueuer")
                return int(found[0][0]) == 0 and bench.ran >= count

            started = time.perf_counter()
            async with bench.worker(batch_size) as dead:
                done = await _wait_until(all_done, 60 + count / 50, "the jobs to complete", dead)
        logged = await readback.rows(
            "SELECT status::text, count(*), count(DISTINCT job_id) FROM pgqueuer_log "
            "WHERE status::text = 'successful' GROUP BY status"
        )
        checked = f"{count} successful, each run once"
        if [tuple(r) for r in logged] != [("successful", count, count)] or bench.ran != count:
            checked = f"FAILED: log {logged}, ran {bench.ran}"
    finally:
        await readback.close()
    return Throughput(
        system="PgQueuer",
        workers=f"{consumers} in-process QueueManagers x batch {batch_size}",
        tasks=count,
        insert_s=insert_s,
        insert_how="enqueue, 1000 a call",
        run_s=done - started,
        checked=checked,
    )


async def pgqueuer_latency(url: str, samples: int, spacing_s: float, batch_size: int) -> Latency:
    """Pickup latency of idle PgQueuer consumers, woken by ``LISTEN/NOTIFY``."""
    returned: dict[int, float] = {}
    async with _PgQueuer(url, 1) as bench, bench.worker(batch_size) as dead:

        async def enqueue(n: int) -> int:
            await bench.queries.enqueue("probe", str(n).encode())
            returned[n] = time.perf_counter()
            return n

        keys = await _spaced(enqueue, samples, spacing_s, bench.started, dead)
    return Latency(
        system="PgQueuer",
        wake="LISTEN/NOTIFY",
        samples=[bench.started[k] - returned[k] for k in keys],
    )


# -- the run -------------------------------------------------------------------------------
@contextlib.contextmanager
def _profiled(enabled: bool) -> Iterator[None]:
    """cProfile the event loop's thread (the store's threads are not seen) and print the top."""
    if not enabled:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())


async def run(args: argparse.Namespace, tmp: Path) -> tuple[list[Throughput], list[Latency]]:
    """Every run asked for: the throughput runs ``--repeat`` times in rounds, then latency."""
    dbs = PgDatabases(args.database_url)
    throughputs: list[Throughput] = []
    latencies: list[Latency] = []
    spacing_s = args.spacing_ms / 1000
    first_concurrency = args.concurrency[0]

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    try:
        # Rounds rather than all repeats of one system in a row, so that a slow minute of the
        # machine does not land on one system only.
        for round_no in range(1, args.repeat + 1):
            for concurrency in args.concurrency if "sqlite" in args.backends else []:
                say(f"round {round_no}: mediatasks SQLite, concurrency {concurrency}")
                url = f"sqlite:///{tmp / f'throughput-{round_no}-{concurrency}.db'}"
                result = await mt_throughput(
                    url, args.tasks, concurrency, tmp / "sqlite", "mediatasks SQLite"
                )
                throughputs.append(result)
            for concurrency in args.concurrency if "postgres" in args.backends else []:
                say(f"round {round_no}: mediatasks PostgreSQL, concurrency {concurrency}")
                async with dbs.database("mt_bench") as url:
                    with _profiled(args.profile):
                        result = await mt_throughput(
                            url, args.tasks, concurrency, tmp / "pg", "mediatasks PostgreSQL"
                        )
                throughputs.append(result)
            for processes in args.processes if "postgres" in args.backends else []:
                say(f"round {round_no}: mediatasks PostgreSQL, {processes} worker processes")
                async with dbs.database("mt_bench") as url:
                    result = await mt_processes(
                        url, args.tasks, processes, first_concurrency, tmp / "processes"
                    )
                throughputs.append(result)
            for concurrency in args.concurrency if "procrastinate" in args.backends else []:
                say(f"round {round_no}: procrastinate, concurrency {concurrency}")
                async with dbs.database("procrastinate_bench") as url:
                    result = await procrastinate_throughput(
                        url, args.tasks, concurrency, args.pool_size
                    )
                throughputs.append(result)
            if "pgqueuer" in args.backends:
                say(f"round {round_no}: PgQueuer, {args.pgqueuer_consumers} consumers")
                async with dbs.database("pgqueuer_bench") as url:
                    result = await pgqueuer_throughput(
                        url, args.tasks, args.pgqueuer_consumers, args.pgqueuer_batch
                    )
                throughputs.append(result)
        if args.samples > 0 and "sqlite" in args.backends:
            say("latency: mediatasks SQLite")
            url = f"sqlite:///{tmp / 'latency.db'}"
            latencies.append(
                await mt_latency(
                    url, args.samples, spacing_s, first_concurrency, tmp / "l", "mediatasks SQLite"
                )
            )
        if args.samples > 0 and "postgres" in args.backends:
            say("latency: mediatasks PostgreSQL")
            async with dbs.database("mt_bench") as url:
                latencies.append(
                    await mt_latency(
                        url,
                        args.samples,
                        spacing_s,
                        first_concurrency,
                        tmp / "l",
                        "mediatasks PostgreSQL",
                    )
                )
        if args.samples > 0 and "procrastinate" in args.backends:
            say("latency: procrastinate")
            async with dbs.database("procrastinate_bench") as url:
                latencies.append(
                    await procrastinate_latency(
                        url, args.samples, spacing_s, first_concurrency, args.pool_size
                    )
                )
        if args.samples > 0 and "pgqueuer" in args.backends:
            say("latency: PgQueuer")
            async with dbs.database("pgqueuer_bench") as url:
                latencies.append(
                    await pgqueuer_latency(url, args.samples, spacing_s, args.pgqueuer_batch)
                )
    finally:
        await dbs.drop_all()
    return throughputs, latencies


def _spread(values: Sequence[float], fmt: str) -> str:
    """``median (min-max)``, or the value alone for one run."""
    if len(values) == 1:
        return format(values[0], fmt)
    low, high = min(values), max(values)
    return f"{statistics.median(values):{fmt}} ({low:{fmt}}-{high:{fmt}})"


def report(
    args: argparse.Namespace,
    code: str,
    throughputs: list[Throughput],
    latencies: list[Latency],
) -> str:
    """The results as markdown: the parameters, then one table per measurement."""
    lines = [
        "## Parameters",
        "",
        "| parameter | value |",
        "|---|---|",
        f"| date | {datetime.date.today().isoformat()} |",
        f"| code | {code}; procrastinate {_version('procrastinate')}; "
        f"PgQueuer {_version('pgqueuer')} with asyncpg {_version('asyncpg')}; "
        f"psycopg {_version('psycopg')} |",
        f"| machine | {os.cpu_count()} CPUs, {platform.machine()}, "
        f"Python {platform.python_version()}; load average {args.load_before} before the run |",
        f"| tasks per throughput run | {args.tasks} |",
        f"| throughput runs per row | {args.repeat} (in rounds; fresh database each) |",
        f"| concurrency | {', '.join(map(str, args.concurrency))} |",
        f"| worker processes (PostgreSQL) | {', '.join(map(str, args.processes)) or 'none'} "
        f"(each with concurrency {args.concurrency[0]}) |",
        f"| procrastinate pool size | {args.pool_size} (mediatasks: 8, its default) |",
        f"| latency samples, spacing | {args.samples}, {args.spacing_ms:g} ms |",
        f"| PostgreSQL | {_redact(args.database_url)} |",
        "",
    ]
    if throughputs:
        groups: dict[tuple[str, str], list[Throughput]] = {}
        for t in throughputs:
            groups.setdefault((t.system, t.workers), []).append(t)
        lines += [
            "## Throughput (no-op tasks; median (min-max) of the runs)",
            "",
            "| system | workers | tasks/s | run s | enqueue with | enqueue tasks/s | check |",
            "|---|---|---:|---:|---|---:|---|",
        ]
        for (system, workers), runs in groups.items():
            failed = [r.checked for r in runs if r.checked.startswith("FAILED")]
            lines.append(
                f"| {system} | {workers} | **{_spread([r.per_s for r in runs], ',.0f')}** "
                f"| {_spread([r.run_s for r in runs], '.2f')} | {runs[0].insert_how} "
                f"| {_spread([r.insert_per_s for r in runs], ',.0f')} "
                f"| {failed[0] if failed else f'all {len(runs)} runs: ' + runs[0].checked} |"
            )
        lines.append("")
    if latencies:
        lines += [
            "## Pickup latency (enqueue returned -> handler started)",
            "",
            "| system | wake-up | samples | p50 ms | p90 ms | p99 ms | max ms | mean ms |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {x.system} | {x.wake} | {len(x.samples)} | **{x.quantile_ms(0.5):.2f}** "
            f"| {x.quantile_ms(0.9):.2f} | **{x.quantile_ms(0.99):.2f}** "
            f"| {max(x.samples) * 1000:.2f} | {statistics.fmean(x.samples) * 1000:.2f} |"
            for x in latencies
        ]
        lines.append("")
    return "\n".join(lines)


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def code_version() -> str:
    """mediatasks' version and, in a git checkout, the commit and whether ``src`` differs."""
    text = f"mediatasks {mediatasks.__version__}"
    root = Path(mediatasks.__file__).resolve().parents[2]

    def git(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", str(root), *argv], capture_output=True, text=True, timeout=10
        )

    try:
        commit = git("rev-parse", "--short", "HEAD")
        if commit.returncode != 0:
            return text
        changed = git("diff", "--quiet", "HEAD", "--", "src").returncode != 0
        untracked = git("ls-files", "--others", "--exclude-standard", "src").stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return text
    text += f", commit {commit.stdout.strip()}"
    if changed or untracked:
        text += " with uncommitted changes in src/"
    return text


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}:{parts.port or 5432} (databases created per run)"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="No-op throughput and pickup latency: mediatasks (SQLite, PostgreSQL), "
        "procrastinate and PgQueuer.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="what to run"
    )
    parser.add_argument("--tasks", type=int, default=5000, help="tasks per throughput run")
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[50],
        help="tasks a worker runs at once; one throughput run per value (the first value is "
        "used by the latency runs and the worker processes)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        nargs="*",
        default=[2],
        help="also time this many 'python -m mediatasks worker' processes on PostgreSQL "
        "(one run per value; none to skip)",
    )
    parser.add_argument(
        "--pool-size",
        type=int,
        default=8,
        help="procrastinate's connection pool size (mediatasks' PostgreSQL store uses 8)",
    )
    parser.add_argument(
        "--pgqueuer-consumers",
        type=int,
        default=2,
        help="PgQueuer QueueManagers in this process, each on its own connection",
    )
    parser.add_argument(
        "--pgqueuer-batch", type=int, default=50, help="jobs a PgQueuer consumer dequeues at once"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="throughput runs per system (the median is shown)"
    )
    parser.add_argument("--samples", type=int, default=200, help="latency samples (0: skip)")
    parser.add_argument("--spacing-ms", type=float, default=20.0, help="time between samples")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a PostgreSQL database to connect to for CREATE/DROP DATABASE (env "
        "BENCH_DATABASE_URL); the runs use databases of their own",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the event-loop thread during the mediatasks PostgreSQL throughput runs",
    )
    args = parser.parse_args(argv)
    if args.tasks <= 0 or args.repeat <= 0 or any(c < 1 or c > 256 for c in args.concurrency):
        parser.error("--tasks and --repeat must be positive, --concurrency within 1..256")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    code = code_version()  # before the runs, which may take long while src/ changes
    # Another busy process on the machine changes every number: say how busy it was.
    args.load_before = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    # procrastinate warns that its App lives in __main__; harmless here, as its worker runs in
    # this very process and finds the tasks.
    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="mediatasks-bench-") as tmp:
        try:
            throughputs, latencies = asyncio.run(_main(args, Path(tmp)))
        except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or SIGTERM
            print("interrupted; databases and temporary files removed", file=sys.stderr)
            return 130
        except BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
    print()
    print(report(args, code, throughputs, latencies))
    if any(t.checked.startswith("FAILED") for t in throughputs):
        print("benchmark failed: a run lost or repeated tasks (see the check column)")
        return 1
    return 0


async def _main(args: argparse.Namespace, tmp: Path) -> tuple[list[Throughput], list[Latency]]:
    # SIGTERM cancels the run like Ctrl-C does, so the cleanup in run() happens either way.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    return await run(args, tmp)


if __name__ == "__main__":
    sys.exit(main())
