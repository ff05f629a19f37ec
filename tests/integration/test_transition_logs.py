"""One log line per transition, from the worker, the rescuer and the service, with the fields an
operator filters on; and none that says something happened when it did not."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from mediatasks import service, tasks, taskstore
from mediatasks.blobstore.memory import MemoryBlobStore
from mediatasks.worker import handlers, loop
from tests.integration.test_worker import _settings, add, phase_is, until

Worker = Callable[..., loop.Worker]


@pytest.fixture
async def project(store: taskstore.TaskStore) -> str:
    return (await store.create_project("logs")).id


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Callable[[str], list[logging.LogRecord]]:
    caplog.set_level(logging.INFO, logger="mediatasks")

    def of(task_id: str) -> list[logging.LogRecord]:
        return [
            r
            for r in caplog.records
            if r.name == "mediatasks.task" and getattr(r, "task_id", None) == task_id
        ]

    return of


@pytest.fixture
async def start_worker(store: taskstore.TaskStore, tmp_path: Path) -> AsyncIterator[Worker]:
    started: list[tuple[loop.Worker, asyncio.Task[None]]] = []

    def start(**overrides: Any) -> loop.Worker:
        worker = loop.Worker(
            _settings(tmp_path, **overrides),
            store,
            MemoryBlobStore(),
            handlers.registry(),
            worker_id="w-logs",
        )
        started.append((worker, asyncio.create_task(worker.run())))
        return worker

    yield start
    for worker, job in started:
        worker.stop()
        await asyncio.wait_for(job, 10)


def events(records: list[logging.LogRecord]) -> list[str]:
    return [str(getattr(r, "event", "")) for r in records]


async def test_completed_and_retried_then_failed(
    store: taskstore.TaskStore, project: str, start_worker: Worker, lines: Any
) -> None:
    done = await add(store, project)
    failing = await add(store, project, fail="it broke", fail_attempts=5)
    start_worker()
    await until(lambda: phase_is(store, done.id, tasks.Phase.COMPLETED))
    await until(lambda: phase_is(store, failing.id, tasks.Phase.FAILED))

    assert events(lines(done.id)) == ["task.claimed", "task.completed"]
    completed = lines(done.id)[-1]
    assert (completed.task_type, completed.attempt, completed.worker) == ("noop", 1, "w-logs")
    assert completed.duration_s >= 0 and completed.levelno == logging.INFO
    assert f"task completed {done.id} type=noop attempt=1" in completed.getMessage()

    assert events(lines(failing.id)) == [
        "task.claimed",
        "task.retried",
        "task.claimed",
        "task.retried",
        "task.claimed",
        "task.failed",
    ]
    retried = lines(failing.id)[1]
    assert retried.error == "it broke" and retried.retries == 1 and retried.delay_s == 0.05
    assert lines(failing.id)[-1].attempt == 3 and lines(failing.id)[-1].levelno == logging.WARNING


async def test_cancelled_while_running_and_released_at_shutdown(
    store: taskstore.TaskStore, project: str, start_worker: Worker, lines: Any
) -> None:
    cancelled = await add(store, project, sleep_s=30)
    worker = start_worker(concurrency=2)
    await until(lambda: phase_is(store, cancelled.id, tasks.Phase.RUNNING))
    await service.cancel_task(store, cancelled.id, project)
    await until(lambda: _stopped(lines, cancelled.id))
    assert events(lines(cancelled.id)) == ["task.claimed", "task.cancelled", "task.stopped"]
    stopped = lines(cancelled.id)[-1]
    assert stopped.reason == "cancelled" and stopped.phase == "cancelled"

    handed_back = await add(store, project, sleep_s=30)
    await until(lambda: phase_is(store, handed_back.id, tasks.Phase.RUNNING))
    worker.stop()
    await until(lambda: phase_is(store, handed_back.id, tasks.Phase.WAITING))
    assert events(lines(handed_back.id)) == ["task.claimed", "task.released"]


async def _stopped(lines: Any, task_id: str) -> bool:
    return "task.stopped" in events(lines(task_id))


async def test_rescued_from_a_worker_that_vanished(
    store: taskstore.TaskStore, project: str, start_worker: Worker, lines: Any
) -> None:
    task = await add(store, project)
    await store.claim("ghost", types=["noop"], limit=1, lease_s=0.2)
    start_worker()
    await until(lambda: phase_is(store, task.id, tasks.Phase.COMPLETED))
    assert events(lines(task.id)) == ["task.rescued", "task.claimed", "task.completed"]
    rescued = lines(task.id)[0]
    assert rescued.worker == "ghost" and rescued.outcome == "retried"
