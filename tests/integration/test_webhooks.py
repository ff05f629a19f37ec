"""Webhooks end to end in one process: the real store on each backend, the worker, the sender,
and a real HTTP receiver on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediatasks import app, settings, tasks, taskstore
from mediatasks.api.runtime import Runtime
from mediatasks.blobstore.memory import MemoryBlobStore
from mediatasks.webhooks import sender
from mediatasks.worker import handlers, loop
from tests import inprocess
from tests.receiver import receiving

SECRET = "s3cret"
ALL = ["task.spawned", "task.updated", "task.completed", "task.failed", "asset.created"]


class Service:
    def __init__(self, runtime: Runtime, client: httpx.AsyncClient, project: str) -> None:
        self.runtime = runtime
        self.client = client
        self.project = project

    @property
    def store(self) -> taskstore.TaskStore:
        return self.runtime.store

    async def add(self, **params: Any) -> tasks.Task:
        return await self.store.create_task(
            taskstore.NewTask(project_id=self.project, type="noop", params=params)
        )

    async def hook(self, url: str, events: list[str] = ALL) -> dict[str, Any]:
        body = {"name": "h", "url": url, "events": events, "sharedSecret": SECRET}
        response = await self.client.post("/webhook", json=body)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


@pytest.fixture
async def service(store: taskstore.TaskStore, tmp_path: Path) -> AsyncIterator[Service]:
    config = settings.Settings(
        data_dir=tmp_path,
        allow_private_urls=True,
        poll_interval_s=0.05,
        heartbeat_interval_s=0.2,
        retry_backoff_s=[0.05],
        webhook_poll_interval_s=0.05,
        webhook_backoff_s=0.1,
        webhook_backoff_cap_s=0.2,
        webhook_timeout_s=2,
        webhook_max_attempts=4,
    )
    runtime = Runtime(settings=config, store=store, blobs=MemoryBlobStore())
    project = await store.create_project("p")
    _, secret = await store.create_api_key(project.id, "k")
    worker = loop.Worker(config, store, runtime.blobs, handlers.registry())
    hooks = sender.Sender(config, store)
    jobs = [asyncio.create_task(worker.run()), asyncio.create_task(hooks.run())]
    application = app.create_app(config, with_worker=False, runtime=runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application),
        base_url="http://testserver/api",
        headers={"Authorization": f"Bearer {secret}"},
    ) as client:
        yield Service(runtime, client, project.id)
    worker.stop()
    hooks.stop()
    await asyncio.gather(*jobs)


async def until(check: Callable[[], Awaitable[bool] | bool], timeout_s: float = 15) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            result = check()
            if isinstance(result, Awaitable):
                result = await result
            if result:
                return
            await asyncio.sleep(0.05)


async def test_events_arrive_signed_once_each(service: Service) -> None:
    with receiving(SECRET) as receiver:
        await service.hook(receiver.url)
        task = await service.add()
        await until(lambda: "task.completed" in receiver.names(task.id))
        await asyncio.sleep(0.3)  # anything late or doubled would show now
    assert all(valid for _, valid in receiver.requests)
    names = receiver.names(task.id)
    assert names.count("task.spawned") == 1 and names.count("task.completed") == 1
    assert names.count("task.updated") == 2  # claimed, completed
    assert len(receiver.requests) == len(receiver.unique)
    completed = next(b for b in receiver.unique.values() if b["event"] == "task.completed")
    assert completed["payload"]["success"] is True
    snapshot = completed["payload"]["task"]["snapshot"]
    assert snapshot["id"] == task.id and snapshot["status"]["phase"] == "completed"
    assert set(completed) == {"id", "webhookId", "createdAt", "timestamp", "event", "payload"}


async def test_failures_are_retried_with_the_same_event_id(service: Service) -> None:
    with receiving(SECRET) as receiver:
        hook = await service.hook(receiver.url, ["task.spawned"])
        receiver.status = 503
        task = await service.add(fail="no", unretriable=True)
        await until(lambda: len(receiver.requests) >= 2)
        receiver.status = 200
        await until(lambda: receiver.requests[-1][0]["id"] and len(receiver.requests) >= 3)
        await asyncio.sleep(0.5)
    ids = {body["id"] for body, _ in receiver.requests}
    assert len(ids) == 1 and receiver.names(task.id) == ["task.spawned"]
    timestamps = [body["timestamp"] for body, _ in receiver.requests]
    assert timestamps == sorted(timestamps) and len(set(timestamps)) == len(timestamps)
    log = (await service.client.get(f"/webhook/{hook['id']}/log")).json()
    assert [entry["success"] for entry in reversed(log)][-1] is True
    assert [entry["response"].get("status") for entry in reversed(log)][:2] == [503, 503]


async def test_a_4xx_is_not_retried_and_a_refused_connection_is(service: Service) -> None:
    with receiving(SECRET) as receiver:
        receiver.status = 410
        hook = await service.hook(receiver.url, ["task.spawned"])
        await service.add()
        await until(lambda: len(receiver.requests) == 1)
        await asyncio.sleep(0.6)
        assert len(receiver.requests) == 1
    log = (await service.client.get(f"/webhook/{hook['id']}/log")).json()
    assert len(log) == 1 and log[0]["success"] is False and log[0]["response"]["status"] == 410
    got = (await service.client.get(f"/webhook/{hook['id']}")).json()
    assert got["status"]["lastFailure"]["statusCode"] == 410

    closed = receiver.url  # nothing listens there any more
    refused = await service.hook(closed, ["task.spawned"])
    await service.add()
    await until(
        lambda: _log_len(service, refused["id"], 4), timeout_s=10
    )  # webhook_max_attempts = 4


async def _log_len(service: Service, hook_id: str, count: int) -> bool:
    log = (await service.client.get(f"/webhook/{hook_id}/log")).json()
    # No answer: the error is the response's statusText, and there is no status.
    return len(log) >= count and all(
        "status" not in entry["response"] and entry["response"]["statusText"] for entry in log
    )


async def test_only_subscribed_webhooks_of_the_project_receive(
    service: Service, store: taskstore.TaskStore
) -> None:
    other = await store.create_project("other")
    with receiving(SECRET) as mine, receiving(SECRET) as theirs, receiving(SECRET) as narrow:
        await service.hook(mine.url)
        await service.hook(narrow.url, ["task.failed"])
        await store.create_webhook(
            other.id, name="t", url=theirs.url, events=ALL, shared_secret=SECRET
        )
        task = await service.add()
        await until(lambda: "task.completed" in mine.names(task.id))
        await asyncio.sleep(0.3)
    assert theirs.requests == [] and narrow.requests == []


async def test_crud_answers_200_with_the_webhook(service: Service) -> None:
    created = await service.hook("https://hooks.example.com/a")
    assert created["url"] == "https://hooks.example.com/a" and created["kind"] == "webhook"
    hook_id = created["id"]
    updated = await service.client.put(
        f"/webhook/{hook_id}",
        json={"name": "renamed", "url": "https://hooks.example.com/b", "events": ["task.failed"]},
    )
    assert updated.status_code == 200 and updated.json()["name"] == "renamed"
    assert [h["id"] for h in (await service.client.get("/webhook")).json()] == [hook_id]
    deleted = await service.client.delete(f"/webhook/{hook_id}")
    assert deleted.status_code == 200 and deleted.json()["id"] == hook_id
    assert (await service.client.get(f"/webhook/{hook_id}")).status_code == 404
    for body in (
        {"name": "x", "url": "ftp://h/x", "events": ["task.failed"]},
        {"url": "https://h/x", "events": ["task.failed"]},
        {"name": "x", "url": "https://h/x", "events": ["task.exploded"]},
    ):
        assert (await service.client.post("/webhook", json=body)).status_code == 422
    # The spec's webhook needs only a name and a URL: without events it receives none.
    quiet = await service.client.post("/webhook", json={"name": "q", "url": "https://h/q"})
    assert quiet.status_code == 200, quiet.text
    assert quiet.json()["events"] == []


async def test_the_shared_secret_is_never_answered(service: Service) -> None:
    created = await service.hook("https://hooks.example.com/s")
    hook_id = created["id"]
    answers = [
        created,
        (await service.client.get(f"/webhook/{hook_id}")).json(),
        (await service.client.get("/webhook")).json(),
        (
            await service.client.put(
                f"/webhook/{hook_id}",
                json={"name": "n", "url": "https://h/n", "sharedSecret": SECRET + "-2"},
            )
        ).json(),
        (await service.client.delete(f"/webhook/{hook_id}")).json(),
    ]
    for answer in answers:
        text = json.dumps(answer)
        assert "sharedSecret" not in text and SECRET not in text, answer


async def test_private_webhook_urls_are_refused_by_default(
    store: taskstore.TaskStore, tmp_path: Path
) -> None:
    config = settings.Settings(data_dir=tmp_path)
    async with inprocess.running(store, config, blobs=MemoryBlobStore(), worker=False) as running:
        for url in ("http://127.0.0.1:9/x", "http://10.0.0.1/x", "http://localhost/x"):
            response = await running.client.post(
                "/webhook", json={"name": "x", "url": url, "events": ["task.failed"]}
            )
            assert response.status_code == 422, url


async def test_resend_sends_the_same_event_again(service: Service) -> None:
    with receiving(SECRET) as receiver:
        hook = await service.hook(receiver.url, ["task.spawned"])
        await service.add()
        await until(lambda: len(receiver.requests) == 1)

        async def logged() -> list[dict[str, object]]:
            answer: list[dict[str, object]] = (
                await service.client.get(f"/webhook/{hook['id']}/log")
            ).json()
            return answer

        # The attempt is logged once the receiver's answer is back, a moment after it arrives.
        await until(lambda: _has_entries(logged()))
        [entry] = await logged()
        again = await service.client.post(f"/webhook/{hook['id']}/log/{entry['id']}/resend")
        assert again.status_code == 200 and again.json()["success"] is True
        assert again.json()["id"] != entry["id"]
    assert len(receiver.requests) == 2 and len(receiver.unique) == 1
    assert all(valid for _, valid in receiver.requests)


async def _has_entries(entries: Awaitable[list[dict[str, object]]]) -> bool:
    return len(await entries) > 0


def test_progress_events_are_throttled() -> None:
    assert loop.should_announce(0.0, 0.26, 0.1, 10)
    assert not loop.should_announce(0.26, 0.3, 1.0, 10)
    assert loop.should_announce(0.26, 0.3, 10.0, 10)
    assert not loop.should_announce(0.3, 0.3, 99.0, 10)
    assert loop.should_announce(0.74, 1.0, 0.0, 10)


async def test_progress_webhooks_are_few(service: Service) -> None:
    with receiving(SECRET) as receiver:
        await service.hook(receiver.url, ["task.updated"])
        task = await service.add(sleep_s=2)
        await until(lambda: _phase(service, task.id, tasks.Phase.COMPLETED))
        await asyncio.sleep(0.3)
    progress_events = [
        b
        for b in receiver.unique.values()
        if b["payload"]["task"]["snapshot"]["status"]["phase"] == "running"
    ]
    # claimed, then quarters: 0.3, 0.5 (or 0.6), 0.8, 1.0 at most, not one per tenth
    assert 2 <= len(progress_events) <= 6


async def _phase(service: Service, task_id: str, phase: tasks.Phase) -> bool:
    return (await service.store.get_task(task_id)).phase is phase


async def test_timeline_shows_three_attempts(service: Service) -> None:
    task = await service.add(fail_attempts=2)
    await until(lambda: _phase(service, task.id, tasks.Phase.COMPLETED))
    body = (await service.client.get(f"/task/{task.id}/events")).json()
    attempts = body["attempts"]
    assert [a["outcome"] for a in attempts] == ["retried", "retried", "completed"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert attempts[0]["error"] == "attempt 1 failed as asked"
    assert all(a["worker"] and a["durationMs"] >= 0 for a in attempts)
    assert [p["phase"] for p in body["phases"]] == [
        "waiting",
        "running",
        "waiting",
        "running",
        "waiting",
        "running",
        "completed",
    ]
    assert body["task"]["status"]["phase"] == "completed"


async def test_queue_position_and_eta(service: Service, store: taskstore.TaskStore) -> None:
    # Two long tasks fill the worker's two slots; the next ones wait their turn.
    blocker, other = await service.add(sleep_s=3), await service.add(sleep_s=3)
    for busy in (blocker, other):
        await until(lambda t=busy: _phase(service, t.id, tasks.Phase.RUNNING))
    await until(lambda: _progress(service, blocker.id))
    running = (await service.client.get(f"/task/{blocker.id}")).json()
    assert running["status"]["eta"] > running["status"]["updatedAt"] - 1000
    assert "queuePosition" not in running["status"]
    waiting = [await service.add() for _ in range(3)]
    positions = [
        (await service.client.get(f"/task/{t.id}")).json()["status"]["queuePosition"]
        for t in waiting
    ]
    # Claims take tasks by (run_at, id): the same millisecond may order them either way, but
    # the positions are always distinct and consecutive.
    assert sorted(positions) == [1, 2, 3]


async def _progress(service: Service, task_id: str) -> bool:
    return ((await service.store.get_task(task_id)).progress or 0) >= 0.2
