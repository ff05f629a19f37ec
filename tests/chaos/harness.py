"""The chaos scenarios of the PostgreSQL job-queue benchmark, against real ``mediatasks worker``
processes on a PostgreSQL cluster of the run's own (``cluster.Cluster``).

A run: a database of its own, ``tasks`` no-op tasks enqueued through the store (a backlog that
outlasts the run), ``workers`` worker processes; a clean window, the fault, then a window after
it.  Throughput is read afterwards from the tasks' ``complete`` events (their times are the
workers' clocks, on this machine), so nothing has to watch the database while it is down.

The faults (each a ``Fault`` with ``begin`` and ``end``):

``postgres-restart``
    ``pg_ctl stop -m fast`` (sessions ended, as ``docker stop`` ends the image's PostgreSQL), down
    for the fault's length, then ``pg_ctl start``.  The fault ends when the server accepts
    connections again.
``backend-kill``
    Every ``1 / rate`` seconds, ``pg_terminate_backend`` on every client backend of the run's
    database (idle ones too: a worker's listening and lock-holding sessions are idle most of the
    time).  Not PostgreSQL's own autovacuum workers: ending the vacuum of ``tasks`` that the
    run's load has just started tests PostgreSQL, not the service, and slows the next minute.
``worker-crash``
    SIGKILL of worker 0; the others carry on; after the fault's length a new worker 0 starts.
``repeated-kills``
    SIGKILL of worker 0, a new one a second later, and again ``kill_period_s`` after the new one
    started, for the fault's length.
``long-transaction``
    A transaction with a transaction id, left open (``idle in transaction``) for the fault's
    length: vacuum cannot remove any row version that died after it began.

What is checked at the end, from the database:

lost
    Tasks not ``completed`` once every worker is idle.
twice
    Tasks whose completion (the handler's outcome, its side effect in the store) was recorded
    more than once.
claimed again
    Tasks claimed more than once: an attempt that the fault cut (a killed worker's, or a claim
    whose answer the fault swallowed) is taken back and run again.  That is the queue's
    at-least-once delivery, not a task run twice, as long as only one completion is recorded.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import contextlib
import dataclasses
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

from mediatasks import tasks, taskstore
from tests import processes
from tests.chaos import cluster as cluster_module

__all__ = [
    "RUNS",
    "SCENARIOS",
    "Config",
    "Result",
    "run_scenario",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """The shape of one run."""

    #: Tasks enqueued before the workers start: more than the run can get through.
    tasks: int
    workers: int = 2
    concurrency: int = 10
    #: The no-op task's ``sleep_s`` (0: it returns at once).
    sleep_s: float = 0.0
    #: Seconds after the workers start that are not measured (connections, first claims).
    warmup_s: float = 2.0
    clean_s: float = 5.0
    fault_s: float = 5.0
    #: After the fault: the throughput window starts this long after its end...
    settle_s: float = 2.0
    #: ...and lasts this long (default: as long as the clean window).
    after_s: float | None = None
    #: ``backend-kill``: terminations per second.
    kill_rate: float = 2.0
    #: ``repeated-kills``: seconds from a new worker's start to the next kill.
    kill_period_s: float = 2.0
    #: The workers' ``lease_s`` (None: the default).
    lease_s: float | None = None
    #: How long the backlog may take to finish once the windows are over.
    drain_timeout_s: float = 120.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class Result:
    """What one scenario run measured."""

    scenario: str
    tasks: int
    clean_per_s: float
    after_per_s: float
    #: Seconds from the fault's end to the first completion after it.
    resumed_s: float | None
    #: Seconds from the fault's end to the start of the first 1 s window at >= 95 % of clean.
    recovered_s: float | None
    lost: int
    twice: int
    claimed_again: int
    #: Why tasks were taken back, from their ``rescue`` events.
    rescued_because: dict[str, int]
    #: What the fault did (terminations, kills), for the report.
    fault_detail: str
    #: Tasks still waiting when the after window ended (0: the backlog ran out too early).
    backlog_left: int

    @property
    def ratio(self) -> float:
        return self.after_per_s / self.clean_per_s if self.clean_per_s else 0.0


# -- worker processes ------------------------------------------------------------------------
class Workers:
    """``mediatasks worker`` processes on one database, each with its own data folder."""

    def __init__(self, url: str, folder: Path, config: Config) -> None:
        self.url = url
        self.folder = folder
        self.config = config
        self.procs: list[processes.Proc] = []
        self._started = 0
        self.killed = 0

    def _env(self, n: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATASKS_")}
        env.pop("DATABASE_URL", None)
        return {
            **env,
            "MEDIATASKS_DATABASE_URL": self.url,
            "MEDIATASKS_CONCURRENCY": str(self.config.concurrency),
            "MEDIATASKS_DATA_DIR": str(self.folder / f"worker-{n}"),
            **({"MEDIATASKS_LEASE_S": str(self.config.lease_s)} if self.config.lease_s else {}),
        }

    def start(self, n: int) -> processes.Proc:
        """Start worker ``n`` (a new process in its slot)."""
        self._started += 1
        proc = processes.start(
            ["worker"], self._env(n), self.folder / f"worker-{n}.{self._started}.log"
        )
        if n < len(self.procs):
            self.procs[n] = proc
        else:
            self.procs.append(proc)
        return proc

    def start_all(self, timeout_s: float = 60) -> None:
        for n in range(self.config.workers):
            self.start(n)
        for proc in self.procs:
            wait_started(proc, timeout_s)

    def kill(self, n: int) -> None:
        """SIGKILL worker ``n``: it gets no chance to hand anything back."""
        self.procs[n].kill()
        self.killed += 1

    def alive(self) -> list[processes.Proc]:
        return [p for p in self.procs if p.popen.poll() is None]

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.stop()


def wait_started(proc: processes.Proc, timeout_s: float) -> None:
    """Wait until the worker logged that it started (its claims run from then on)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.popen.returncode}:\n{proc.log()}")
        if "mediatasks.worker.loop" in proc.log() and " started " in proc.log():
            return
        time.sleep(0.05)
    raise RuntimeError(f"worker did not start within {timeout_s} s:\n{proc.log()}")


# -- faults ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Context:
    """What a fault acts on."""

    cluster: cluster_module.Cluster
    database: str
    workers: Workers
    config: Config
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)


class Fault:
    """A fault: ``begin`` starts it, ``end`` stops it once its length has passed."""

    name = ""

    def begin(self, ctx: Context) -> None:
        raise NotImplementedError

    def end(self, ctx: Context) -> None:
        raise NotImplementedError

    def describe(self, ctx: Context) -> str:
        return ""


class _Loop:
    """A thread that calls ``step`` every ``period_s`` until stopped."""

    def __init__(self, period_s: float, step: Callable[[], None]) -> None:
        self._stop = threading.Event()
        self.errors: list[str] = []

        def run() -> None:
            while not self._stop.wait(period_s):
                try:
                    step()
                except Exception as exc:  # reported, and the loop goes on
                    self.errors.append(f"{type(exc).__name__}: {exc}")

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


class PostgresRestart(Fault):
    name = "postgres-restart"

    def begin(self, ctx: Context) -> None:
        ctx.cluster.stop("fast")
        ctx.detail["stopped_at"] = time.time()

    def end(self, ctx: Context) -> None:
        ctx.cluster.start()

    def describe(self, ctx: Context) -> str:
        return f"pg_ctl stop -m fast, down {ctx.config.fault_s:g} s, pg_ctl start"


class BackendKill(Fault):
    name = "backend-kill"

    def begin(self, ctx: Context) -> None:
        conn = psycopg.connect(ctx.cluster.admin_url, autocommit=True)
        ctx.detail["conn"] = conn
        ctx.detail["terminated"] = 0

        def step() -> None:
            found = conn.execute(
                b"SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                b"WHERE datname = %s AND pid <> pg_backend_pid() "
                b"AND backend_type = 'client backend'",
                (ctx.database,),
            ).fetchone()
            ctx.detail["terminated"] += int(found[0]) if found else 0

        step()
        ctx.detail["loop"] = _Loop(1 / ctx.config.kill_rate, step)

    def end(self, ctx: Context) -> None:
        ctx.detail["loop"].stop()
        ctx.detail["conn"].close()

    def describe(self, ctx: Context) -> str:
        return (
            "pg_terminate_backend on every client backend of the database, "
            f"{ctx.config.kill_rate:g}/s for {ctx.config.fault_s:g} s: "
            f"{ctx.detail['terminated']} backends ended"
        )


class WorkerCrash(Fault):
    name = "worker-crash"

    def begin(self, ctx: Context) -> None:
        ctx.workers.kill(0)

    def end(self, ctx: Context) -> None:
        # The fault lasts until the new worker runs (its own start-up is part of the outage).
        wait_started(ctx.workers.start(0), 60)

    def describe(self, ctx: Context) -> str:
        workers, fault_s = ctx.config.workers, ctx.config.fault_s
        return f"SIGKILL of 1 of {workers} workers, a new one started {fault_s:g} s later"


class RepeatedKills(Fault):
    name = "repeated-kills"

    def begin(self, ctx: Context) -> None:
        def step() -> None:
            ctx.workers.kill(0)
            time.sleep(1.0)
            # Each kill finds a worker at work: the next waits until this one has started.
            wait_started(ctx.workers.start(0), 60)

        step()
        ctx.detail["loop"] = _Loop(ctx.config.kill_period_s, step)

    def end(self, ctx: Context) -> None:
        ctx.detail["loop"].stop()
        if ctx.workers.procs[0].popen.poll() is not None:
            ctx.workers.start(0)
        wait_started(ctx.workers.procs[0], 60)

    def describe(self, ctx: Context) -> str:
        return (
            f"SIGKILL of worker 0, a new one 1 s later, the next kill "
            f"{ctx.config.kill_period_s:g} s after it started, for {ctx.config.fault_s:g} s: "
            f"{ctx.workers.killed} kills"
        )


class LongTransaction(Fault):
    name = "long-transaction"

    def begin(self, ctx: Context) -> None:
        conn = psycopg.connect(ctx.cluster.url(ctx.database))
        conn.execute(b"SELECT txid_current()")  # holds an xid: vacuum keeps what died after it
        ctx.detail["conn"] = conn

    def end(self, ctx: Context) -> None:
        conn: psycopg.Connection[Any] = ctx.detail["conn"]
        with psycopg.connect(ctx.cluster.url(ctx.database), autocommit=True) as watcher:
            row = watcher.execute(
                b"SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'tasks'"
            ).fetchone()
        ctx.detail["dead"] = int(row[0]) if row else 0
        conn.rollback()
        conn.close()

    def describe(self, ctx: Context) -> str:
        return (
            f"a transaction holding an xid, idle for {ctx.config.fault_s:g} s "
            f"({ctx.detail.get('dead', 0)} dead row versions in tasks at its end)"
        )


class NoFault(Fault):
    """The control: the same windows with nothing done in between, so the ratio of a fault
    can be read against the machine's own drift between two windows."""

    name = "none"

    def begin(self, ctx: Context) -> None:
        pass

    def end(self, ctx: Context) -> None:
        pass

    def describe(self, ctx: Context) -> str:
        return "nothing (the control)"


#: The five chaos scenarios.
SCENARIOS: dict[str, type[Fault]] = {
    fault.name: fault
    for fault in (PostgresRestart, BackendKill, WorkerCrash, RepeatedKills, LongTransaction)
}
#: Every run the benchmark knows: the scenarios and the control.
RUNS: dict[str, type[Fault]] = {NoFault.name: NoFault, **SCENARIOS}


# -- a run ----------------------------------------------------------------------------------
#: Processes that enqueue the backlog side by side (each a store of its own).
_ENQUEUERS = 2


async def _project(url: str) -> str:
    store = taskstore.open_task_store(url)
    try:
        await store.migrate()
        return (await store.create_project("chaos")).id
    finally:
        await store.close()


async def _enqueue(url: str, project_id: str, count: int, sleep_s: float) -> None:
    store = taskstore.open_task_store(url)
    try:
        params: dict[str, Any] = {"sleep_s": sleep_s} if sleep_s else {}
        new = taskstore.NewTask(project_id=project_id, type=tasks.TaskType.NOOP, params=params)
        for first in range(0, count, 32):
            size = min(32, count - first)
            await asyncio.gather(*(store.create_task(new) for _ in range(size)))
    finally:
        await store.close()


def _enqueue_part(url: str, project_id: str, count: int, sleep_s: float) -> None:
    asyncio.run(_enqueue(url, project_id, count, sleep_s))


def _rows(url: str, sql: bytes) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description is not None else []


def _waiting_or_running(url: str) -> int:
    rows = _rows(url, b"SELECT count(*) FROM tasks WHERE phase IN ('waiting', 'running')")
    return int(rows[0][0])


def _wait_drained(url: str, workers: Workers, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    left = -1
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.OperationalError):
            left = _waiting_or_running(url)
            if left == 0:
                return
        if not workers.alive():
            break
        time.sleep(0.2)
    logs = "\n".join(p.log()[-3000:] for p in workers.procs)
    raise AssertionError(f"{left} tasks still waiting or running after {timeout_s} s:\n{logs}")


def _sleep_until(at: float) -> None:
    while (left := at - time.time()) > 0:
        time.sleep(min(left, 0.05))


def _rate(times: list[float], start: float, end: float) -> float:
    if end <= start:
        return 0.0
    return (bisect.bisect_left(times, end) - bisect.bisect_left(times, start)) / (end - start)


def prepare_backlog(cluster: cluster_module.Cluster, config: Config) -> str:
    """A database with the run's backlog (``config.tasks`` no-op tasks, analysed), to be copied
    by each scenario (``CREATE DATABASE ... TEMPLATE`` copies files: much faster than enqueuing
    again); its name."""
    name = f"chaos_backlog_{os.getpid()}_{time.monotonic_ns()}"
    url = cluster.create_database(name)
    project_id = asyncio.run(_project(url))
    parts = [
        config.tasks // _ENQUEUERS + (n < config.tasks % _ENQUEUERS) for n in range(_ENQUEUERS)
    ]
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(len(parts), mp_context=spawn) as pool:
        jobs = [pool.submit(_enqueue_part, url, project_id, n, config.sleep_s) for n in parts]
        for job in jobs:
            job.result()
    _rows(url, b"ANALYZE")
    return name


def run_scenario(
    cluster: cluster_module.Cluster, name: str, config: Config, folder: Path, backlog: str
) -> Result:
    """Run scenario ``name`` once in a copy of the ``backlog`` database (``prepare_backlog``
    with the same ``config``); what it measured."""
    fault = RUNS[name]()
    database = f"chaos_{name.replace('-', '_')}_{os.getpid()}_{time.monotonic_ns()}"
    url = cluster.create_database(database, template=backlog)
    folder.mkdir(parents=True, exist_ok=True)
    workers = Workers(url, folder, config)
    ctx = Context(cluster=cluster, database=database, workers=workers, config=config)
    after_s = config.after_s if config.after_s is not None else config.clean_s
    try:
        workers.start_all()
        started = time.time()
        clean = (started + config.warmup_s, started + config.warmup_s + config.clean_s)
        _sleep_until(clean[1])
        fault_began = time.time()
        fault.begin(ctx)
        _sleep_until(fault_began + config.fault_s)
        fault.end(ctx)
        fault_ended = time.time()
        after = (fault_ended + config.settle_s, fault_ended + config.settle_s + after_s)
        _sleep_until(after[1])
        cluster.wait_ready()
        backlog_left = int(_rows(url, b"SELECT count(*) FROM tasks WHERE phase = 'waiting'")[0][0])
        _wait_drained(url, workers, config.drain_timeout_s)
    finally:
        workers.stop_all()
    try:
        return _measure(
            url, name, config, clean, fault_ended, after, fault.describe(ctx), backlog_left
        )
    finally:
        # Once drained, the run's database holds a dead row version for each update it made:
        # left there, autovacuum would clean it while the next run is measured, taking one of
        # the machine's cores from it for many seconds.
        cluster.drop_database(database)


def _measure(
    url: str,
    name: str,
    config: Config,
    clean: tuple[float, float],
    fault_ended: float,
    after: tuple[float, float],
    detail: str,
    backlog_left: int,
) -> Result:
    times = sorted(
        float(at) / 1000
        for (at,) in _rows(url, b"SELECT at FROM task_events WHERE name = 'complete'")
    )
    per_task = _rows(
        url,
        b"SELECT t.phase, t.attempt, t.output, "
        b"count(*) FILTER (WHERE e.name = 'complete'), count(*) FILTER (WHERE e.name = 'claim') "
        b"FROM tasks AS t LEFT JOIN task_events AS e ON e.task_id = t.id GROUP BY t.id",
    )
    lost = sum(1 for row in per_task if row[0] != "completed")
    twice = 0
    for phase, attempt, output, completions, _ in per_task:
        # The recorded outcome is the last attempt's, and there is exactly one.
        recorded = (output or {}).get("noop", {}).get("attempt")
        if completions > 1 or (phase == "completed" and recorded != attempt):
            twice += 1
    claimed_again = sum(1 for row in per_task if row[4] > 1)
    because: dict[str, int] = {}
    for (data,) in _rows(url, b"SELECT data FROM task_events WHERE name = 'rescue'"):
        reason = (data if isinstance(data, dict) else json.loads(data)).get("because", "?")
        because[str(reason)] = because.get(str(reason), 0) + 1
    clean_per_s = _rate(times, *clean)
    after_per_s = _rate(times, *after)
    first_after = bisect.bisect_left(times, fault_ended)
    resumed_s = times[first_after] - fault_ended if first_after < len(times) else None
    recovered_s = None
    step = 0.1
    probe = fault_ended
    while probe + 1.0 <= after[1]:
        if _rate(times, probe, probe + 1.0) >= 0.95 * clean_per_s:
            recovered_s = probe - fault_ended
            break
        probe += step
    return Result(
        scenario=name,
        tasks=config.tasks,
        clean_per_s=clean_per_s,
        after_per_s=after_per_s,
        resumed_s=resumed_s,
        recovered_s=recovered_s,
        lost=lost,
        twice=twice,
        claimed_again=claimed_again,
        rescued_because=because,
        fault_detail=detail,
        backlog_left=backlog_left,
    )


@contextlib.contextmanager
def own_cluster() -> Iterator[cluster_module.Cluster]:
    """A started cluster of the run's own, destroyed at the end."""
    made = cluster_module.Cluster()
    try:
        made.start()
        yield made
    finally:
        made.destroy()
