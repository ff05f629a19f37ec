"""The worker: claim -> run -> report, with one beat for all its leases, a rescuer, batched
completions and a graceful shutdown.

``run()`` registers the worker, takes back the tasks of dead predecessors, starts the side loops,
then repeats: wait for a free slot, claim as many runnable tasks as there are free slots (one
statement), start each in its own asyncio task.  ``_process`` runs the handler, decides the
outcome (``outcome.decide``, a pure function) and persists it under ``asyncio.shield``, so a
shutdown never leaves an outcome half written.  A completion frees its slot at once and waits at
most ``outcome_flush_s`` to be written with others in one statement (``complete_many``); until
then the worker still holds the task's lease.

Every ``heartbeat_interval_s`` the worker beats: one statement marks it seen in the registry,
extends the lease of every task it holds and says which it no longer holds (cancelled, or taken
back), which stop at once.  Progress is saved in the same round, for the tasks whose progress
moved.

The rescuer (every ``rescue_interval_s``, and at start) takes back the tasks of workers that are
gone: a worker on this machine whose process is gone, a worker whose database session is gone
(PostgreSQL), a lease that expired.  It then removes the work folders that those attempts left.

Shutdown policy (``stop()``, called on SIGTERM): stop claiming at once; let running tasks go on for
``shutdown_grace_s``; then cancel them (their FFmpeg is killed) and hand them back to ``waiting``
with ``release``, which does not count an attempt; write every buffered completion.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mediatasks import errors, tasks, taskstore, telemetry
from mediatasks import settings as settings_module
from mediatasks.blobstore import base as blobstore
from mediatasks.worker import handler as handler_module
from mediatasks.worker import outcome

__all__ = ["Worker", "node_id", "should_announce"]

log = logging.getLogger(__name__)

#: The rescuer also sweeps the work folder every this many rounds, for attempts that died on this
#: data folder but were taken back by a worker elsewhere.
_SWEEP_EVERY = 10


def should_announce(announced: float, progress: float, elapsed_s: float, interval_s: float) -> bool:
    """Whether a progress change is worth a ``task.updated`` event.

    Yes when it crosses a quarter (0.25, 0.5, 0.75, 1) or when ``interval_s`` passed since the
    last one: a long transcode sends a handful of events, not one per heartbeat.
    """
    if int(progress * 4) > int(announced * 4):
        return True
    return progress > announced and elapsed_s >= interval_s


def node_id() -> str:
    """This machine and process namespace: workers with the same node see each other's pids.

    The boot id changes at every boot, and the pid namespace differs between containers, so two
    workers with the same node can trust ``kill(pid, 0)`` about each other.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return f"host:{socket.gethostname()}"
    return f"{boot}:{namespace}"


def _boot_time_s() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def process_alive(pid: int, registered_at: datetime) -> bool:
    """Whether the process that registered at ``registered_at`` with ``pid`` still runs.

    A pid taken over by a process that started after the registration is not it.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    boot = _boot_time_s()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        started_ticks = int(fields[19])
    except (OSError, IndexError, ValueError):
        return True
    if boot is None:
        return True
    started = boot + started_ticks / os.sysconf("SC_CLK_TCK")
    # The boot time is only known to the second and drifts with the clock: a wide margin, as
    # taking a live worker for dead costs a rerun, while the reverse only waits for a lease.
    return started <= registered_at.timestamp() + 60.0


class _Running:
    """The worker's bookkeeping for one task it holds."""

    def __init__(self, task: tasks.Task, ctx: handler_module.Context) -> None:
        self.task = task
        self.ctx = ctx
        self.job: asyncio.Task[None] | None = None
        self.saved_progress: float | None = None
        self.claimed_at = asyncio.get_running_loop().time()
        #: The handler has returned (or raised): its outcome is being saved, so the task
        #: leaving ``running`` now is the worker's own doing, not a cancel or a rescue.
        self.finishing = False
        #: How long the attempt took, once its handler returned.
        self.ran_s: float | None = None
        #: The progress of the last ``task.updated`` event, and when it was sent.
        self.announced_progress = 0.0
        self.announced_at = self.claimed_at
        #: Why the handler was cancelled: ``lost`` (cancelled or rescued) or ``shutdown``.
        self.stop_reason: str | None = None

    @property
    def token(self) -> str:
        assert self.task.lease_token is not None
        return self.task.lease_token

    @property
    def attempt_s(self) -> float:
        """Seconds since the claim (until the handler returned, once it has)."""
        if self.ran_s is not None:
            return self.ran_s
        return asyncio.get_running_loop().time() - self.claimed_at


class Worker:
    """Runs tasks of the registered types until stopped."""

    def __init__(
        self,
        settings: settings_module.Settings,
        store: taskstore.TaskStore,
        blobs: blobstore.BlobStore,
        handlers: Mapping[str, handler_module.Handler],
        *,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.handlers = dict(handlers)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.identity = taskstore.WorkerIdentity(
            id=self.worker_id, host=socket.gethostname(), node=node_id(), pid=os.getpid()
        )
        self._registered = False
        self._work_root = str(settings.work_dir)
        #: Tasks whose handler runs: each takes a slot.
        self._running: dict[str, _Running] = {}
        #: Tasks whose completion waits in ``_outcomes``: no slot, but their lease is held.
        self._finishing: dict[str, _Running] = {}
        #: Completions waiting to be written, with the facts that go on the timeline.
        self._outcomes: list[tuple[_Running, outcome.Complete, dict[str, object]]] = []
        self._outcome_added = asyncio.Event()
        self._batch_full = asyncio.Event()
        self._flushed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._policy = taskstore.RescuePolicy(
            max_rescues=settings.max_rescues, silent_s=settings.worker_silent_s
        )

    # -- public -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop claiming; ``run()`` returns once running tasks are finished or handed back."""
        self._stopping.set()
        self._slot_freed.set()
        self._flushed.set()

    @property
    def running_task_ids(self) -> list[str]:
        """The tasks this worker holds now."""
        return list(self._running)

    async def run(self) -> None:
        """Work until ``stop()`` is called."""
        self.settings.work_dir.mkdir(parents=True, exist_ok=True)
        await self._register()
        await self._rescue_round()  # dead predecessors' tasks first: they are the oldest
        await self._sweep_workdirs()
        side = [
            asyncio.create_task(self._beat_loop(), name="beat"),
            asyncio.create_task(self._rescue_loop(), name="rescuer"),
            asyncio.create_task(self._flush_loop(), name="completions"),
        ]
        log.info("worker %s started (concurrency %d)", self.worker_id, self.settings.concurrency)
        try:
            await self._claim_loop()
            await self._drain()
            await self._flush_all()
        finally:
            for job in side:
                job.cancel()
            await asyncio.gather(*side, return_exceptions=True)
            if self._registered:
                try:
                    await self.store.deregister_worker(self.worker_id)
                except errors.MediaTasksError as exc:
                    log.warning("could not mark worker %s stopped: %s", self.worker_id, exc)
            log.info("worker %s stopped", self.worker_id)

    async def _register(self) -> None:
        try:
            await self.store.register_worker(self.identity)
        except errors.MediaTasksError as exc:
            log.warning(
                "could not register worker %s (retried at its beats): %s", self.worker_id, exc
            )
        else:
            self._registered = True

    # -- claiming -----------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        types = sorted(self.handlers)
        most_waiting = 2 * self.settings.outcome_batch_size
        while not self._stopping.is_set():
            free = self.settings.concurrency - len(self._running)
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            if len(self._outcomes) >= most_waiting:
                # Completions are not written as fast as tasks end (the store is slow or away).
                self._flushed.clear()
                await self._flushed.wait()
                continue
            try:
                claimed = await self.store.claim(
                    self.worker_id, types=types, limit=free, lease_s=self.settings.lease_s
                )
            except errors.MediaTasksError as exc:
                log.warning("claim failed: %s", exc)
                claimed = []
            for task in claimed:
                self._start(task)
            if not claimed:
                await self._idle()

    async def _idle(self) -> None:
        """Sleep until work may be there: a notification, a poll interval, or stop()."""
        waiter = asyncio.create_task(self.store.wait_for_work(self.settings.poll_interval_s))
        stopper = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for job in (waiter, stopper):
                job.cancel()
            await asyncio.gather(waiter, stopper, return_exceptions=True)

    def _start(self, task: tasks.Task) -> None:
        earlier = self._running.get(task.id)
        if earlier is not None:  # taken back from this very worker, and claimed by it again
            self._abandon(earlier)
        ctx = handler_module.Context(
            task=task,
            settings=self.settings,
            store=self.store,
            blobs=self.blobs,
            work_path=Path(f"{self._work_root}/{task.id}/{task.attempt}"),
        )
        entry = _Running(task, ctx)
        self._running[task.id] = entry
        telemetry.task_claimed(task, self.worker_id)
        entry.job = asyncio.create_task(self._process(entry), name=f"task {task.id}")

    # -- running one task ---------------------------------------------------------------------
    async def _process(self, entry: _Running) -> None:
        task = entry.task
        result: outcome.Outcome | None = None
        try:
            handler = self.handlers[task.type]
            result = await handler.run(entry.ctx)
        except asyncio.CancelledError:
            if entry.stop_reason is None:  # cancelled from outside: the worker is exiting
                entry.stop_reason = "shutdown"
        except Exception as exc:
            result = outcome.decide(task, exc, self.settings.retry_backoff_s)
            if not isinstance(exc, errors.TaskFailure):
                log.exception("task %s (%s) raised", task.id, task.type)
        finally:
            entry.finishing = True
            entry.ran_s = entry.attempt_s
            try:
                await asyncio.shield(self._persist(entry, result))
            finally:
                if entry.ctx.workdir_made:
                    _remove_attempt_folder(entry.ctx.work_path)
                if self._running.get(task.id) is entry:
                    del self._running[task.id]
                self._slot_freed.set()

    async def _persist(self, entry: _Running, result: outcome.Outcome | None) -> None:
        task = entry.task
        facts = entry.ctx.public(entry.ctx.facts)
        try:
            if entry.stop_reason == "shutdown":
                released = await self.store.release(task.id, entry.token)
                telemetry.task_released(released, self.worker_id, entry.attempt_s)
            elif entry.stop_reason == "lost" or result is None:
                # Cancelled or rescued: the store already moved it on.
                now = await self.store.get_task(task.id)
                telemetry.task_stopped(task, self.worker_id, entry.attempt_s, now.phase)
            elif isinstance(result, outcome.Complete):
                self._finishing[task.id] = entry
                self._outcomes.append((entry, result, facts))
                self._outcome_added.set()
                if len(self._outcomes) >= self.settings.outcome_batch_size:
                    self._batch_full.set()
            elif isinstance(result, outcome.RetryLater):
                again = await self.store.retry_later(
                    task.id,
                    entry.token,
                    error_message=entry.ctx.public(result.error_message),
                    delay_s=result.delay_s,
                    detail={**facts, **entry.ctx.public(result.detail)},
                )
                telemetry.task_retried(
                    again, self.worker_id, entry.attempt_s, result.delay_s, result.error_message
                )
            else:
                failed = await self.store.fail(
                    task.id,
                    entry.token,
                    error_message=entry.ctx.public(result.error_message),
                    detail={**facts, **entry.ctx.public(result.detail)},
                )
                telemetry.task_failed(failed, self.worker_id, entry.attempt_s, result.error_message)
        except errors.InvalidTransition as exc:
            log.info("task %s moved on before its outcome was saved: %s", task.id, exc)
        except errors.MediaTasksError as exc:
            log.error("could not save the outcome of task %s: %s", task.id, exc)

    # -- writing completions ------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        """Write buffered completions: a full batch at once, else after ``outcome_flush_s``."""
        while True:
            await self._outcome_added.wait()
            if len(self._outcomes) < self.settings.outcome_batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._batch_full.wait(), self.settings.outcome_flush_s)
            if not await self._flush_batch():
                await asyncio.sleep(self.settings.poll_interval_s)  # the store is unavailable

    async def _flush_batch(self) -> bool:
        """Write one batch of buffered completions; False if the store could not take it."""
        batch = self._outcomes[: self.settings.outcome_batch_size]
        if not batch:
            self._outcome_added.clear()
            return True
        finished = [
            taskstore.Completion(
                task_id=entry.task.id,
                lease_token=entry.token,
                output=result.output,
                asset_media=result.asset_media,
                detail=facts,
            )
            for entry, result, facts in batch
        ]
        try:
            completed = await self.store.complete_many(finished)
        except errors.MediaTasksError as exc:
            log.warning("could not save %d completion(s), trying again: %s", len(batch), exc)
            return False
        del self._outcomes[: len(batch)]
        if len(self._outcomes) < self.settings.outcome_batch_size:
            self._batch_full.clear()
        if not self._outcomes:
            self._outcome_added.clear()
        self._flushed.set()
        for entry, result, facts in batch:
            if self._finishing.get(entry.task.id) is entry:
                del self._finishing[entry.task.id]
            if entry.task.id in completed or await self._completed_late(entry):
                task = entry.task.evolve(phase=tasks.Phase.COMPLETED, output=result.output)
                telemetry.task_completed(task, self.worker_id, entry.attempt_s, facts)
            else:
                log.info("task %s moved on before its completion was saved", entry.task.id)
                await self._unpublish(result)
        return True

    async def _completed_late(self, entry: _Running) -> bool:
        """Whether an earlier try of this batch, given up on, completed the task after all (its
        published media must then stay)."""
        try:
            task = await self.store.get_task(entry.task.id)
        except errors.MediaTasksError:
            return True  # cannot tell: keeping files is better than deleting a task's output
        return (
            task.phase is tasks.Phase.COMPLETED
            and task.worker_id == self.worker_id
            and task.attempt == entry.task.attempt
        )

    async def _flush_all(self) -> None:
        """At shutdown: write every buffered completion, while the store takes them."""
        deadline = asyncio.get_running_loop().time() + self.settings.lease_s
        while self._outcomes and asyncio.get_running_loop().time() < deadline:
            if not await self._flush_batch():
                await asyncio.sleep(self.settings.poll_interval_s)
        if self._outcomes:
            log.error("%d completion(s) not saved; those tasks will run again", len(self._outcomes))

    async def _unpublish(self, result: outcome.Complete) -> None:
        for prefix in result.published:
            await self.blobs.delete_prefix(prefix)

    async def _drain(self) -> None:
        """After stop(): give running tasks the grace period, then cancel and hand them back."""
        jobs = [entry.job for entry in self._running.values() if entry.job is not None]
        if not jobs:
            return
        log.info(
            "waiting up to %ss for %d running task(s)", self.settings.shutdown_grace_s, len(jobs)
        )
        _, pending = await asyncio.wait(jobs, timeout=self.settings.shutdown_grace_s)
        for entry in list(self._running.values()):
            if entry.job in pending:
                entry.stop_reason = "shutdown"
                entry.job.cancel()
        if pending:
            await asyncio.wait(pending)

    # -- side loops ---------------------------------------------------------------------------
    async def _beat_loop(self) -> None:
        """Beat: leases extended and checked in one statement; then changed progress saved."""
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval_s)
            if not self._registered:
                await self._register()
            running = [
                e for e in self._running.values() if e.stop_reason is None and not e.finishing
            ]
            held = {e.task.id: e.token for e in running}
            held.update({e.task.id: e.token for e in self._finishing.values()})
            try:
                still = await self.store.beat(self.worker_id, held, lease_s=self.settings.lease_s)
            except errors.MediaTasksError as exc:
                log.warning("beat failed: %s", exc)
                continue
            for entry in running:
                if self._running.get(entry.task.id) is not entry or entry.finishing:
                    continue  # finished meanwhile: its outcome is being saved
                if entry.task.id not in still:
                    self._abandon(entry)
                else:
                    await self._save_progress(entry)

    async def _save_progress(self, entry: _Running) -> None:
        progress = round(entry.ctx.progress, 3)
        if progress == entry.saved_progress or (entry.saved_progress is None and progress == 0):
            return
        now = asyncio.get_running_loop().time()
        announce = should_announce(
            entry.announced_progress,
            progress,
            now - entry.announced_at,
            self.settings.progress_event_interval_s,
        )
        try:
            await self.store.heartbeat(
                entry.task.id,
                entry.token,
                lease_s=self.settings.lease_s,
                progress=progress,
                announce=announce,
            )
        except errors.InvalidTransition:
            self._abandon(entry)
        except errors.MediaTasksError as exc:
            log.warning("progress of %s not saved: %s", entry.task.id, exc)
        else:
            entry.saved_progress = progress
            if announce:
                entry.announced_progress, entry.announced_at = progress, now

    def _abandon(self, entry: _Running) -> None:
        """The task was cancelled or taken back: stop its work and leave its row alone."""
        if entry.stop_reason is None and not entry.finishing and entry.job is not None:
            entry.stop_reason = "lost"
            entry.job.cancel()

    async def _rescue_loop(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(self.settings.rescue_interval_s)
            rounds += 1
            rescued = await self._rescue_round()
            if rescued or rounds % _SWEEP_EVERY == 0:
                try:
                    await self._sweep_workdirs()
                except errors.MediaTasksError as exc:
                    log.warning("work folder sweep failed: %s", exc)

    async def _rescue_round(self) -> int:
        """Take back the tasks of workers that are gone; how many."""
        try:
            dead = await self._dead_neighbours()
            rescued = await self.store.rescue(self._policy, dead_workers=dead)
        except errors.MediaTasksError as exc:
            log.warning("rescue failed: %s", exc)
            return 0
        for task in rescued:
            telemetry.task_rescued(task)
        return len(rescued)

    async def _dead_neighbours(self) -> list[str]:
        """Workers on this machine that hold tasks and whose process is gone."""
        since = datetime.now(UTC) - timedelta(days=1)
        return [
            record.id
            for record in await self.store.list_workers(since)
            if record.running
            and record.id != self.worker_id
            and record.stopped_at is None
            and record.node == self.identity.node
            and not process_alive(record.pid, record.started_at)
        ]

    async def _sweep_workdirs(self) -> None:
        """Remove work folders of attempts that are over (their worker died).

        Folders are ``<task id>/<attempt>``: a folder of attempt *n* is removed once the store says
        that attempt *n* is not the one running, and a new attempt never writes into it.
        """
        root = self.settings.work_dir
        names = [p.name for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
        for name in names:
            if name in self._running or name in self._finishing:
                current = (self._running.get(name) or self._finishing[name]).task
            else:
                try:
                    current = await self.store.get_task(name)
                except errors.NotFound:
                    current = None
            keep = None
            last = 0 if current is None else current.attempt
            if current is not None and current.phase is tasks.Phase.RUNNING:
                keep, last = current.attempt, current.attempt - 1
            folder = root / name
            for attempt in list(folder.iterdir()):
                number = int(attempt.name) if attempt.name.isdigit() else 0
                if number != keep and (number <= last or current is None):
                    if attempt.is_dir():
                        shutil.rmtree(attempt, ignore_errors=True)
                    else:
                        attempt.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                folder.rmdir()


def _remove_attempt_folder(path: Path) -> None:
    """Remove an attempt's folder, and its task's folder once no attempt is left in it."""
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()
