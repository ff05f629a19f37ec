"""The worker loop against a real task store on each backend, with the ``noop`` handler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from mediatasks import settings, tasks, taskstore
from mediatasks.blobstore.memory import MemoryBlobStore
from mediatasks.worker import handlers, loop


def _settings(tmp_path: Path, **overrides: Any) -> settings.Settings:
    base: dict[str, Any] = {
        "data_dir": tmp_path,
        "concurrency": 4,
        "lease_s": 5,
        "heartbeat_interval_s": 0.5,
        "poll_interval_s": 0.05,
        "rescue_interval_s": 0.1,
        "retry_backoff_s": [0.05, 0.1],
        "shutdown_grace_s": 0.2,
    }
    base.update(overrides)
    return settings.Settings(**base)


@pytest.fixture
async def project(store: taskstore.TaskStore) -> str:
    return (await store.create_project("w")).id


@pytest.fixture
async def start_worker(
    store: taskstore.TaskStore, tmp_path: Path
) -> AsyncIterator[Callable[..., loop.Worker]]:
    started: list[tuple[loop.Worker, asyncio.Task[None]]] = []

    def start(**overrides: Any) -> loop.Worker:
        worker = loop.Worker(
            _settings(tmp_path, **overrides), store, MemoryBlobStore(), handlers.registry()
        )
        started.append((worker, asyncio.create_task(worker.run())))
        return worker

    yield start
    for worker, job in started:
        worker.stop()
        await asyncio.wait_for(job, 10)


async def add(store: taskstore.TaskStore, project: str, **params: Any) -> tasks.Task:
    return await store.create_task(
        taskstore.NewTask(project_id=project, type="noop", params=params, max_retries=2)
    )


async def until(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 10, interval_s: float = 0.02
) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():
            await asyncio.sleep(interval_s)


async def phase_is(store: taskstore.TaskStore, task_id: str, *phases: tasks.Phase) -> bool:
    return (await store.get_task(task_id)).phase in phases


async def test_runs_tasks_to_completion(
    store: taskstore.TaskStore, project: str, start_worker: Callable[..., loop.Worker]
) -> None:
    made = [await add(store, project) for _ in range(10)]
    start_worker()
    for task in made:
        await until(lambda t=task: phase_is(store, t.id, tasks.Phase.COMPLETED))
    done = await store.get_task(made[0].id)
    assert done.output == {"noop": {"attempt": 1}}
    assert [e.name for e in await store.list_events(done.id)] == ["created", "claim", "complete"]


async def test_retriable_failure_retries_then_fails(
    store: taskstore.TaskStore, project: str, start_worker: Callable[..., loop.Worker]
) -> None:
    task = await add(store, project, fail="the source server answered 503")
    start_worker()
    await until(lambda: phase_is(store, task.id, tasks.Phase.FAILED))
    failed = await store.get_task(task.id)
    assert failed.retries == 2
    assert failed.attempt == 3
    assert failed.error_message == "the source server answered 503"
    names = [e.name for e in await store.list_events(task.id)]
    assert names.count("retry_later") == 2 and names[-1] == "fail"


async def test_unretriable_failure_fails_at_once(
    store: taskstore.TaskStore, project: str, start_worker: Callable[..., loop.Worker]
) -> None:
    task = await add(store, project, fail="not a video", unretriable=True)
    start_worker()
    await until(lambda: phase_is(store, task.id, tasks.Phase.FAILED))
    failed = await store.get_task(task.id)
    assert failed.retries == 0 and failed.attempt == 1
    assert failed.error_message == "not a video"


async def test_progress_is_saved_while_running(
    store: taskstore.TaskStore, project: str, start_worker: Callable[..., loop.Worker]
) -> None:
    task = await add(store, project, sleep_s=3)
    start_worker()
    seen: list[float] = []

    async def check() -> bool:
        current = await store.get_task(task.id)
        if current.phase is tasks.Phase.RUNNING and current.progress is not None:
            seen.append(current.progress)
        return current.phase is tasks.Phase.COMPLETED

    await until(check, interval_s=0.1)
    assert len(set(seen)) >= 2
    assert seen == sorted(seen)


async def test_cancel_stops_a_running_task_within_two_seconds(
    store: taskstore.TaskStore, project: str, start_worker: Callable[..., loop.Worker]
) -> None:
    task = await add(store, project, sleep_s=30)
    worker = start_worker()
    await until(lambda: phase_is(store, task.id, tasks.Phase.RUNNING))
    await store.cancel(task.id, project)
    loop_time = asyncio.get_running_loop().time
    started = loop_time()
    await until(lambda: asyncio.sleep(0, result=not worker.running_task_ids))
    assert loop_time() - started < 2
    assert (await store.get_task(task.id)).phase is tasks.Phase.CANCELLED


async def test_shutdown_hands_back_without_counting(
    store: taskstore.TaskStore, project: str, start_worker: Callable[..., loop.Worker]
) -> None:
    task = await add(store, project, sleep_s=30)
    worker = start_worker()
    await until(lambda: phase_is(store, task.id, tasks.Phase.RUNNING))
    worker.stop()
    await until(lambda: phase_is(store, task.id, tasks.Phase.WAITING))
    released = await store.get_task(task.id)
    assert released.attempt == 0 and released.retries == 0
    assert released.lease_token is None


async def test_lost_worker_is_rescued(
    store: taskstore.TaskStore, project: str, start_worker: Callable[..., loop.Worker]
) -> None:
    task = await add(store, project)
    # A worker that claimed and then vanished: its lease simply runs out.
    [claimed] = await store.claim("ghost", types=["noop"], limit=1, lease_s=0.2)
    start_worker()
    await until(lambda: phase_is(store, task.id, tasks.Phase.COMPLETED))
    done = await store.get_task(task.id)
    # Rescues do not spend the task's retries: losing a worker is not the input's fault.
    assert (done.retries, done.rescues, done.attempt) == (0, 1, 2)
    assert claimed.lease_token != done.lease_token
    assert "rescue" in [e.name for e in await store.list_events(task.id)]


async def test_two_workers_run_each_task_once(
    store: taskstore.TaskStore, project: str, start_worker: Callable[..., loop.Worker]
) -> None:
    made = [await add(store, project) for _ in range(60)]
    start_worker(concurrency=3)
    start_worker(concurrency=3)
    for task in made:
        await until(lambda t=task: phase_is(store, t.id, tasks.Phase.COMPLETED))
    for task in made:
        claims = [e for e in await store.list_events(task.id) if e.name == "claim"]
        assert len(claims) == 1
