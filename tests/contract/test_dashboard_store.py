"""What the dashboard asks of a task store, on each backend: a task's webhook deliveries, a
project's event log and counts, searching by task or asset id, and a manual retry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from mediatasks import assets, errors, service, tasks, taskstore, watch

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOOK_URL = "http://127.0.0.1:9/hook"


async def _upload(
    store: taskstore.TaskStore, project: str, asset_id: str, *, now: datetime = T0
) -> str:
    _, task = await store.create_asset(
        taskstore.NewAsset(
            id=asset_id,
            project_id=project,
            name="clip.mp4",
            playback_id=f"pb{asset_id}",
            phase=assets.AssetPhase.WAITING,
            source={"type": "url", "url": "http://127.0.0.1:9/v.mp4"},
            options={},
        ),
        taskstore.NewTask(project_id=project, type="upload", params={}, output_asset_id=asset_id),
        now=now,
    )
    return task.id


async def test_a_task_lists_the_deliveries_of_its_own_and_its_assets_events(
    store: taskstore.TaskStore,
) -> None:
    project = (await store.create_project("p")).id
    hook = await store.create_webhook(
        project,
        name="receiver",
        url=HOOK_URL,
        events=["task.spawned", "task.updated", "task.completed", "asset.ready"],
        shared_secret=None,
    )
    task_id = await _upload(store, project, "a1")
    # Runnable after the first one; its events are not the first task's.
    other_id = await _upload(store, project, "a2", now=T0 + timedelta(seconds=1))
    [claimed] = await store.claim("w1", types=["upload"], limit=1, lease_s=30, now=T0)
    assert claimed.id == task_id and claimed.lease_token is not None
    later = T0 + timedelta(seconds=1)
    await store.complete(claimed.id, claimed.lease_token, output={}, asset_media={}, now=later)
    await store.dispatch_events(now=later)

    listed = await store.list_task_deliveries(task_id, project)
    assert sorted(d.event for d in listed) == sorted(
        ["task.spawned", "task.updated", "task.updated", "task.completed", "asset.ready"]
    )
    assert {d.state for d in listed} == {"pending"}
    assert {(d.webhook_id, d.webhook_name, d.webhook_url) for d in listed} == {
        (hook.id, "receiver", HOOK_URL)
    }
    assert all(d.attempts == 0 and d.last_attempt_at is None for d in listed)
    assert [d.event_at for d in listed] == sorted(d.event_at for d in listed)  # oldest first
    assert [d.event for d in await store.list_task_deliveries(other_id, project)] == [
        "task.spawned"
    ]
    assert await store.list_task_deliveries(task_id, "another-project") == []

    # Attempts show on the delivery: a refused one, then one answered 200.
    sent_at = T0 + timedelta(seconds=2)
    due = await store.claim_deliveries(limit=100, lock_s=60, now=sent_at)
    completed = next(d for d in due if d.event.name == "task.completed")
    await store.finish_attempt(
        completed,
        success=False,
        duration_ms=3,
        request={},
        response={"error": "connection refused"},
        retry_at=sent_at + timedelta(seconds=5),
        now=sent_at,
    )
    by_id = {d.id: d for d in await store.list_task_deliveries(task_id, project)}
    refused = by_id[completed.id]
    assert (refused.state, refused.attempts) == ("pending", 1)
    assert (refused.last_status, refused.last_error) == (None, "connection refused")
    assert refused.last_attempt_at == sent_at
    again_at = sent_at + timedelta(seconds=5)
    [again] = [
        d
        for d in await store.claim_deliveries(limit=100, lock_s=60, now=again_at)
        if d.id == completed.id
    ]
    await store.finish_attempt(
        again,
        success=True,
        duration_ms=3,
        request={},
        response={"status": 200, "body": "ok"},
        retry_at=None,
        now=again_at,
    )
    by_id = {d.id: d for d in await store.list_task_deliveries(task_id, project)}
    delivered = by_id[completed.id]
    assert (delivered.state, delivered.attempts) == ("delivered", 2)
    assert (delivered.last_status, delivered.last_error) == (200, None)
    assert delivered.last_attempt_at == again_at


async def test_a_task_without_a_watching_webhook_has_no_deliveries(
    store: taskstore.TaskStore,
) -> None:
    project = (await store.create_project("p")).id
    task_id = await _upload(store, project, "a1")
    await store.dispatch_events(now=T0)
    assert await store.list_task_deliveries(task_id, project) == []


# -- a manual retry ----------------------------------------------------------------------------
async def test_a_manual_retry_is_a_new_attempt_and_revives_the_asset(
    store: taskstore.TaskStore,
) -> None:
    project = (await store.create_project("p")).id
    task_id = await _upload(store, project, "a1")
    [claimed] = await store.claim("w1", types=["upload"], limit=1, lease_s=30, now=T0)
    assert claimed.lease_token is not None
    await store.fail(claimed.id, claimed.lease_token, error_message="bad file", now=T0)
    assert (await store.get_asset("a1")).phase is assets.AssetPhase.FAILED
    with pytest.raises(errors.NotFound):
        await service.retry_task(store, task_id, "another-project")
    retried = await service.retry_task(store, task_id, project)
    assert (retried.phase, retried.retries, retried.error_message) == ("waiting", 0, None)
    revived = await store.get_asset("a1")
    assert (revived.phase, revived.error_message) == (assets.AssetPhase.WAITING, None)
    soon = datetime.now(UTC) + timedelta(seconds=1)  # the retry is runnable from now on
    [again] = await store.claim("w2", types=["upload"], limit=1, lease_s=30, now=soon)
    assert (again.id, again.attempt, again.worker_id) == (task_id, 2, "w2")
    assert [e.name for e in await store.list_events(task_id)] == [
        "created",
        "claim",
        "fail",
        "retry",
        "claim",
    ]
    with pytest.raises(errors.InvalidTransition):  # a running task is not retried
        await service.retry_task(store, task_id, project)


async def test_a_task_of_a_deleted_asset_is_not_retried(store: taskstore.TaskStore) -> None:
    project = (await store.create_project("p")).id
    task_id = await _upload(store, project, "a1")
    await store.delete_asset("a1", project)
    assert (await store.get_task(task_id)).phase is tasks.Phase.CANCELLED
    with pytest.raises(errors.InvalidTransition, match="deleted"):
        await service.retry_task(store, task_id, project)
    assert (await store.get_task(task_id)).phase is tasks.Phase.CANCELLED


# -- following a project -----------------------------------------------------------------------
async def test_a_project_event_log_counts_and_search(store: taskstore.TaskStore) -> None:
    project, other = (await store.create_project("p")).id, (await store.create_project("q")).id
    assert await store.last_event_id(project) == 0
    upload_id = await _upload(store, project, "a1")
    start = await store.last_event_id(project)
    assert start > 0
    noop = await store.create_task(
        taskstore.NewTask(project_id=project, type="noop", params={}, input_asset_id="a1"), now=T0
    )
    await store.create_task(taskstore.NewTask(project_id=other, type="noop", params={}), now=T0)
    await store.cancel(noop.id, project, now=T0)
    events = await store.list_project_events(project, after_id=start)
    assert [(e.task_id, e.name) for e in events] == [(noop.id, "created"), (noop.id, "cancel")]
    assert await store.last_event_id(project) == events[-1].id
    assert await store.list_project_events(project, after_id=events[-1].id) == []

    counts = await store.count_tasks_by_phase(project)
    assert counts == {
        tasks.Phase.PENDING: 0,
        tasks.Phase.WAITING: 1,
        tasks.Phase.RUNNING: 0,
        tasks.Phase.COMPLETED: 0,
        tasks.Phase.FAILED: 0,
        tasks.Phase.CANCELLED: 1,
    }
    only_uploads = await store.count_tasks_by_phase(project, types=["upload", "clip"])
    assert (only_uploads[tasks.Phase.WAITING], only_uploads[tasks.Phase.CANCELLED]) == (1, 0)

    async def related(value: str) -> set[str]:
        page = await store.list_tasks(taskstore.Query(project_id=project, related_to=value))
        return {task.id for task in page.items}

    assert await related("a1") == {upload_id, noop.id}  # fills it, reads it
    assert await related(noop.id) == {noop.id}
    assert await related("nothing") == set()
    page = await store.list_tasks(taskstore.Query(project_id=other, related_to=noop.id))
    assert page.items == []


async def test_following_a_project_gives_what_moved(store: taskstore.TaskStore) -> None:
    project, other = (await store.create_project("p")).id, (await store.create_project("q")).id
    first = await store.create_task(
        taskstore.NewTask(project_id=project, type="noop", params={}), now=T0
    )
    second = await store.create_task(
        taskstore.NewTask(project_id=project, type="noop", params={}), now=T0 + timedelta(seconds=1)
    )
    foreign = await store.create_task(  # behind them in the one queue of every project
        taskstore.NewTask(project_id=other, type="noop", params={}), now=T0 + timedelta(seconds=2)
    )
    changes = watch.follow(
        store, project, [first.id, second.id, foreign.id], poll_s=0.01, refresh_s=0.05
    )

    async def next_change() -> watch.Change:
        async with asyncio.timeout(10):
            async for change in changes:
                if change is not None:
                    return change
        raise AssertionError("the stream ended")

    try:
        opening = await next_change()
        by_id = {status.id: status for status in opening.statuses}
        assert set(by_id) == {first.id, second.id}  # another project's task is left out
        assert by_id[first.id].queue_position == 1
        assert by_id[second.id].queue_position == 2
        assert opening.counts is not None and opening.counts[tasks.Phase.WAITING] == 2

        [claimed] = await store.claim("w1", types=["noop"], limit=1, lease_s=30, now=T0)
        assert claimed.id == first.id and claimed.lease_token is not None
        moved = await next_change()
        statuses = {status.id: status for status in moved.statuses}
        assert statuses[first.id].phase is tasks.Phase.RUNNING
        assert moved.counts is not None and moved.counts[tasks.Phase.RUNNING] == 1
        # The second task moved up the queue without an event of its own (the refresh).
        while second.id not in statuses:
            statuses.update({status.id: status for status in (await next_change()).statuses})
        assert statuses[second.id].queue_position == 1

        await store.heartbeat(
            first.id, claimed.lease_token, lease_s=30, progress=0.5, announce=True
        )
        progressed = await next_change()
        while not any(s.id == first.id and s.progress == 0.5 for s in progressed.statuses):
            progressed = await next_change()
        [status] = [s for s in progressed.statuses if s.id == first.id]
        assert status.eta is not None

        await store.create_task(taskstore.NewTask(project_id=project, type="noop", params={}))
        created = await next_change()
        while created.created == 0:
            created = await next_change()
        assert created.created == 1 and created.counts is not None
        assert created.counts[tasks.Phase.WAITING] == 2
    finally:
        await changes.aclose()
