"""The worker: claim -> run -> report, with heartbeats, a cancel watcher, a rescuer and a
graceful shutdown.

``run()`` starts the side loops, then repeats: wait for a free slot, claim as many runnable tasks
as there are free slots, start each in its own asyncio task.  ``_process`` runs the handler,
decides the outcome (``outcome.decide``, a pure function) and persists it under
``asyncio.shield``, so a shutdown never leaves an outcome half written.

Shutdown policy (``stop()``, called on SIGTERM): stop claiming at once; let running tasks go on for
``shutdown_grace_s``; then cancel them (their FFmpeg is killed) and hand them back to ``waiting``
with ``release``, which does not count an attempt.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Mapping

from mediatasks import errors, tasks, taskstore, telemetry
from mediatasks import settings as settings_module
from mediatasks.blobstore import base as blobstore
from mediatasks.worker import handler as handler_module
from mediatasks.worker import outcome

__all__ = ["Worker", "should_announce"]

log = logging.getLogger(__name__)


def should_announce(announced: float, progress: float, elapsed_s: float, interval_s: float) -> bool:
    """Whether a progress change is worth a ``task.updated`` event.

    Yes when it crosses a quarter (0.25, 0.5, 0.75, 1) or when ``interval_s`` passed since the
    last one: a long transcode sends a handful of events, not one per heartbeat.
    """
    if int(progress * 4) > int(announced * 4):
        return True
    return progress > announced and elapsed_s >= interval_s


class _Running:
    """The worker's bookkeeping for one task it holds."""

    def __init__(self, task: tasks.Task, ctx: handler_module.Context) -> None:
        self.task = task
        self.ctx = ctx
        self.job: asyncio.Task[None] | None = None
        self.saved_progress: float | None = None
        self.last_beat = asyncio.get_running_loop().time()
        self.claimed_at = self.last_beat
        #: The handler has returned (or raised): its outcome is being saved, so the task
        #: leaving ``running`` now is the worker's own doing, not a cancel or a rescue.
        self.finishing = False
        #: The progress of the last ``task.updated`` event, and when it was sent.
        self.announced_progress = 0.0
        self.announced_at = self.last_beat
        #: Why the handler was cancelled: ``lost`` (cancelled or rescued) or ``shutdown``.
        self.stop_reason: str | None = None

    @property
    def token(self) -> str:
        assert self.task.lease_token is not None
        return self.task.lease_token

    @property
    def attempt_s(self) -> float:
        """Seconds since the claim."""
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
        self._running: dict[str, _Running] = {}
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()

    # -- public -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop claiming; ``run()`` returns once running tasks are finished or handed back."""
        self._stopping.set()
        self._slot_freed.set()

    @property
    def running_task_ids(self) -> list[str]:
        """The tasks this worker holds now."""
        return list(self._running)

    async def run(self) -> None:
        """Work until ``stop()`` is called."""
        self.settings.work_dir.mkdir(parents=True, exist_ok=True)
        await self._sweep_workdirs()
        side = [
            asyncio.create_task(self._beat_loop(), name="heartbeat"),
            asyncio.create_task(self._rescue_loop(), name="rescuer"),
        ]
        log.info("worker %s started (concurrency %d)", self.worker_id, self.settings.concurrency)
        try:
            await self._claim_loop()
            await self._drain()
        finally:
            for job in side:
                job.cancel()
            await asyncio.gather(*side, return_exceptions=True)
            log.info("worker %s stopped", self.worker_id)

    # -- claiming -----------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        types = sorted(self.handlers)
        while not self._stopping.is_set():
            free = self.settings.concurrency - len(self._running)
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
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
        ctx = handler_module.Context(
            task=task,
            settings=self.settings,
            store=self.store,
            blobs=self.blobs,
            work_path=self.settings.work_dir / task.id,
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
            try:
                await asyncio.shield(self._persist(entry, result))
            finally:
                if entry.ctx.workdir_made:
                    shutil.rmtree(entry.ctx.work_path, ignore_errors=True)
                self._running.pop(task.id, None)
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
                try:
                    done = await self.store.complete(
                        task.id,
                        entry.token,
                        output=result.output,
                        asset_media=result.asset_media,
                        detail=facts,
                    )
                except errors.InvalidTransition:
                    await self._unpublish(result)
                    raise
                telemetry.task_completed(done, self.worker_id, entry.attempt_s, facts)
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
        """Notice cancelled or lost tasks within a second; save progress and extend leases."""
        loop = asyncio.get_running_loop()
        interval_s = min(1.0, self.settings.heartbeat_interval_s)
        while True:
            await asyncio.sleep(interval_s)
            entries = [
                e for e in self._running.values() if e.stop_reason is None and not e.finishing
            ]
            if not entries:
                continue
            try:
                held = await self.store.running_leases([e.task.id for e in entries])
            except errors.MediaTasksError as exc:
                log.warning("lease check failed: %s", exc)
                continue
            for entry in entries:
                if entry.finishing:
                    continue  # the lease check raced with the outcome being saved
                if held.get(entry.task.id) != entry.token:
                    self._abandon(entry)
                    continue
                progress = round(entry.ctx.progress, 3)
                due = loop.time() - entry.last_beat >= self.settings.heartbeat_interval_s
                if progress == entry.saved_progress and not due:
                    continue
                now = loop.time()
                announce = progress != entry.saved_progress and should_announce(
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
                        progress=None if progress == entry.saved_progress else progress,
                        announce=announce,
                    )
                except errors.InvalidTransition:
                    self._abandon(entry)
                except errors.MediaTasksError as exc:
                    log.warning("heartbeat of %s failed: %s", entry.task.id, exc)
                else:
                    entry.saved_progress = progress
                    entry.last_beat = now
                    if announce:
                        entry.announced_progress, entry.announced_at = progress, now

    def _abandon(self, entry: _Running) -> None:
        """The task was cancelled or taken back: stop its work and leave its row alone."""
        if entry.stop_reason is None and not entry.finishing and entry.job is not None:
            entry.stop_reason = "lost"
            entry.job.cancel()

    async def _rescue_loop(self) -> None:
        policy = taskstore.RescuePolicy(backoff_s=self.settings.retry_backoff_s)
        while True:
            try:
                for task in await self.store.rescue(policy):
                    telemetry.task_rescued(task)
            except errors.MediaTasksError as exc:
                log.warning("rescue failed: %s", exc)
            await asyncio.sleep(self.settings.rescue_interval_s)

    async def _sweep_workdirs(self) -> None:
        """Remove work folders left by attempts that died with their process."""
        names = [p.name for p in self.settings.work_dir.iterdir() if p.is_dir()]
        if not names:
            return
        held = await self.store.running_leases(names)
        for name in names:
            if name not in held:
                shutil.rmtree(self.settings.work_dir / name, ignore_errors=True)
