"""One contract for every task store backend: each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from mediatasks import assets, errors, tasks, taskstore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TYPES = ("noop", "upload")


async def new_project(store: taskstore.TaskStore) -> str:
    return (await store.create_project("p")).id


async def add(
    store: taskstore.TaskStore, project_id: str, *, now: datetime = T0, **kw: object
) -> tasks.Task:
    fields: dict[str, object] = {"project_id": project_id, "type": "noop", "params": {"n": 1}}
    fields.update(kw)
    return await store.create_task(taskstore.NewTask(**fields), now=now)  # type: ignore[arg-type]


async def claim_one(
    store: taskstore.TaskStore, *, now: datetime = T0, lease_s: float = 30
) -> tasks.Task:
    claimed = await store.claim("w1", types=TYPES, limit=1, lease_s=lease_s, now=now)
    assert len(claimed) == 1
    return claimed[0]


async def test_migrate_is_idempotent(store: taskstore.TaskStore) -> None:
    assert await store.migrate() == []


async def test_create_and_get(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    task = await add(store, project)
    assert task.phase is tasks.Phase.WAITING
    assert task.params == {"n": 1}
    assert task.created_at == T0 and task.scheduled_at == T0
    assert await store.get_task(task.id, project) == task
    with pytest.raises(errors.NotFound):
        await store.get_task(task.id, "another-project")
    with pytest.raises(errors.NotFound):
        await store.get_task("missing")


async def test_claim_leases_and_counts_attempts(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    task = await add(store, project)
    claimed = await claim_one(store, now=T0 + timedelta(seconds=1))
    assert claimed.id == task.id
    assert claimed.phase is tasks.Phase.RUNNING
    assert claimed.attempt == 1
    assert claimed.lease_token
    assert claimed.worker_id == "w1"
    assert claimed.lease_expires_at == T0 + timedelta(seconds=31)
    assert await store.claim("w2", types=TYPES, limit=5, lease_s=30, now=T0) == []


async def test_claim_respects_run_at_types_and_limit(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    for i in range(5):
        await add(store, project, now=T0 + timedelta(seconds=i))
    await add(store, project, type="other")
    early = await store.claim("w", types=TYPES, limit=10, lease_s=30, now=T0 + timedelta(seconds=2))
    assert len(early) == 3
    rest = await store.claim("w", types=TYPES, limit=1, lease_s=30, now=T0 + timedelta(hours=1))
    assert len(rest) == 1
    assert await store.count_tasks(tasks.Phase.WAITING) == 2  # one noop, one "other"


async def test_ping(store: taskstore.TaskStore) -> None:
    await store.ping()
    await asyncio.gather(*(store.ping() for _ in range(5)))  # concurrent pings share the trip


async def test_queue_depth_counts_unfinished_tasks_by_type_and_phase(
    store: taskstore.TaskStore,
) -> None:
    assert await store.queue_depth() == {}
    project = await new_project(store)
    await add(store, project)
    await add(store, project)
    await add(store, project, type="upload", phase=tasks.Phase.PENDING)
    done = await claim_one(store)
    assert await store.queue_depth() == {
        ("noop", tasks.Phase.WAITING): 1,
        ("noop", tasks.Phase.RUNNING): 1,
        ("upload", tasks.Phase.PENDING): 1,
    }
    assert done.lease_token is not None
    await store.complete(done.id, done.lease_token, output={}, now=T0)
    cancelled = await store.cancel((await add(store, project, type="clip")).id, now=T0)
    assert cancelled.phase is tasks.Phase.CANCELLED
    assert await store.queue_depth() == {
        ("noop", tasks.Phase.WAITING): 1,
        ("upload", tasks.Phase.PENDING): 1,
    }


async def test_pending_needs_schedule(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    task = await add(store, project, phase=tasks.Phase.PENDING)
    assert task.scheduled_at is None
    assert await store.claim("w", types=TYPES, limit=1, lease_s=30, now=T0) == []
    scheduled = await store.schedule(task.id, now=T0)
    assert scheduled.phase is tasks.Phase.WAITING
    with pytest.raises(errors.InvalidTransition):
        await store.schedule(task.id, now=T0)
    assert (await claim_one(store)).id == task.id


async def test_heartbeat_extends_lease_and_progress_never_goes_down(
    store: taskstore.TaskStore,
) -> None:
    project = await new_project(store)
    await add(store, project)
    task = await claim_one(store)
    assert task.lease_token is not None
    later = T0 + timedelta(seconds=10)
    beat = await store.heartbeat(task.id, task.lease_token, lease_s=30, progress=0.5, now=later)
    assert beat.progress == 0.5
    assert beat.lease_expires_at == later + timedelta(seconds=30)
    assert beat.updated_at == later
    lower = await store.heartbeat(task.id, task.lease_token, lease_s=30, progress=0.2, now=later)
    assert lower.progress == 0.5
    same = await store.heartbeat(task.id, task.lease_token, lease_s=30, now=later)
    assert same.progress == 0.5
    with pytest.raises(errors.LeaseLost):
        await store.heartbeat(task.id, "not-the-token", lease_s=30, now=later)


async def test_complete_needs_the_lease(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    await add(store, project)
    task = await claim_one(store)
    assert task.lease_token is not None
    with pytest.raises(errors.LeaseLost):
        await store.complete(task.id, "wrong", output={"x": 1}, now=T0)
    done = await store.complete(task.id, task.lease_token, output={"x": 1}, now=T0)
    assert done.phase is tasks.Phase.COMPLETED
    assert done.output == {"x": 1}
    assert done.lease_token is None
    with pytest.raises(errors.LeaseLost):
        await store.complete(task.id, task.lease_token, output={}, now=T0)
    with pytest.raises(errors.InvalidTransition):
        await store.cancel(task.id, now=T0)
    with pytest.raises(errors.InvalidTransition):
        await store.retry(task.id, now=T0)


async def test_retry_later_then_fail(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    await add(store, project, max_retries=1)
    task = await claim_one(store)
    assert task.lease_token is not None
    again = await store.retry_later(
        task.id, task.lease_token, error_message="boom", delay_s=30, now=T0
    )
    assert again.phase is tasks.Phase.WAITING
    assert again.retries == 1
    assert again.error_message == "boom"
    assert again.run_at == T0 + timedelta(seconds=30)
    assert await store.claim("w", types=TYPES, limit=1, lease_s=30, now=T0) == []
    second = await claim_one(store, now=T0 + timedelta(seconds=30))
    assert second.attempt == 2
    assert second.lease_token is not None and second.lease_token != task.lease_token
    failed = await store.fail(second.id, second.lease_token, error_message="bad input", now=T0)
    assert failed.phase is tasks.Phase.FAILED
    assert failed.error_message == "bad input"


async def test_manual_retry_resets_retries(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    await add(store, project)
    task = await claim_one(store)
    assert task.lease_token is not None
    await store.retry_later(task.id, task.lease_token, error_message="x", delay_s=0, now=T0)
    task = await claim_one(store)
    assert task.lease_token is not None
    await store.fail(task.id, task.lease_token, error_message="x", now=T0)
    with pytest.raises(errors.NotFound):
        await store.retry(task.id, "another-project", now=T0)
    retried = await store.retry(task.id, project, now=T0 + timedelta(minutes=1))
    assert retried.phase is tasks.Phase.WAITING
    assert retried.retries == 0
    assert retried.error_message is None
    assert retried.scheduled_at == T0 + timedelta(minutes=1)
    with pytest.raises(errors.InvalidTransition):
        await store.retry(task.id, now=T0)


async def test_cancel_in_every_active_phase(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    pending = await add(store, project, phase=tasks.Phase.PENDING)
    await add(store, project)
    running = await store.claim("w", types=TYPES, limit=1, lease_s=30, now=T0)
    waiting = await add(store, project)
    for task in (pending, waiting, running[0]):
        cancelled = await store.cancel(task.id, project, now=T0)
        assert cancelled.phase is tasks.Phase.CANCELLED
    assert running[0].lease_token is not None
    with pytest.raises(errors.LeaseLost):
        await store.heartbeat(running[0].id, running[0].lease_token, lease_s=30, now=T0)
    with pytest.raises(errors.InvalidTransition):
        await store.cancel(waiting.id, project, now=T0)
    with pytest.raises(errors.NotFound):
        await store.cancel(waiting.id, "another-project", now=T0)
    retried = await store.retry(waiting.id, project, now=T0)
    assert retried.phase is tasks.Phase.WAITING


async def test_release_does_not_count(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    await add(store, project)
    task = await claim_one(store)
    assert task.lease_token is not None
    released = await store.release(task.id, task.lease_token, now=T0)
    assert released.phase is tasks.Phase.WAITING
    assert released.attempt == 0
    assert released.retries == 0
    assert (await claim_one(store)).attempt == 1


async def test_rescue_requeues_then_fails_expired_leases(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    await add(store, project, max_retries=1)
    policy = taskstore.RescuePolicy(backoff_s=[5])
    task = await claim_one(store, lease_s=10)
    assert await store.rescue(policy, now=T0 + timedelta(seconds=9)) == []
    [rescued] = await store.rescue(policy, now=T0 + timedelta(seconds=11))
    assert rescued.phase is tasks.Phase.WAITING
    assert rescued.retries == 1
    assert rescued.error_message == policy.error_message
    assert rescued.run_at == T0 + timedelta(seconds=16)
    assert task.lease_token is not None
    with pytest.raises(errors.LeaseLost):
        await store.complete(task.id, task.lease_token, output={}, now=T0)
    await claim_one(store, now=T0 + timedelta(seconds=16), lease_s=10)
    [failed] = await store.rescue(policy, now=T0 + timedelta(seconds=30))
    assert failed.phase is tasks.Phase.FAILED


async def test_events_are_written_with_every_transition(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    await add(store, project)
    task = await claim_one(store)
    assert task.lease_token is not None
    await store.heartbeat(task.id, task.lease_token, lease_s=30, progress=0.3, now=T0)
    await store.retry_later(task.id, task.lease_token, error_message="e", delay_s=0, now=T0)
    task = await claim_one(store)
    assert task.lease_token is not None
    await store.complete(task.id, task.lease_token, output={}, now=T0)
    events = await store.list_events(task.id)
    assert [e.name for e in events] == [
        "created",
        "claim",
        "progress",
        "retry_later",
        "claim",
        "complete",
    ]
    assert events[1].data["worker"] == "w1"
    assert events[2].progress == 0.3
    assert events[3].data["error"] == "e"
    assert [e.name for e in await store.list_events(task.id, after_id=events[3].id)] == [
        "claim",
        "complete",
    ]


async def test_transitions_roll_back_whole(store: taskstore.TaskStore) -> None:
    """A failed guard writes nothing, not even an event."""
    project = await new_project(store)
    task = await add(store, project)
    with pytest.raises(errors.LeaseLost):
        await store.fail(task.id, "nope", error_message="x", now=T0)
    assert [e.name for e in await store.list_events(task.id)] == ["created"]


async def test_concurrent_claims_never_share_a_task(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    for _ in range(40):
        await add(store, project)
    batches = await asyncio.gather(
        *(store.claim(f"w{i}", types=TYPES, limit=3, lease_s=30) for i in range(8))
    )
    ids = [task.id for batch in batches for task in batch]
    assert len(ids) == len(set(ids)) == 24


async def test_list_tasks_pages_filters_orders_and_scopes(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    other = await new_project(store)
    made = [await add(store, project, now=T0 + timedelta(seconds=i)) for i in range(5)]
    await add(store, other)
    page = await store.list_tasks(taskstore.Query(project_id=project, limit=2, with_total=True))
    assert [t.id for t in page.items] == [made[4].id, made[3].id]
    assert page.total == 5
    page2 = await store.list_tasks(taskstore.Query(project_id=project, limit=2, offset=4))
    assert [t.id for t in page2.items] == [made[0].id]
    asc = await store.list_tasks(taskstore.Query(project_id=project, order=[("created_at", False)]))
    assert [t.id for t in asc.items] == [t.id for t in made]
    cutoff = int((T0 + timedelta(seconds=2)).timestamp() * 1000)
    filtered = await store.list_tasks(
        taskstore.Query(
            project_id=project,
            filters=[taskstore.Filter(field="created_at", op="gte", value=cutoff)],
        )
    )
    assert {t.id for t in filtered.items} == {t.id for t in made[2:]}
    with pytest.raises(errors.InvalidInput):
        await store.list_tasks(
            taskstore.Query(
                project_id=project, filters=[taskstore.Filter(field="params", op="eq", value=1)]
            )
        )


async def test_api_keys(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    key, secret = await store.create_api_key(project, "ci")
    assert secret.startswith("mt_")
    assert await store.authenticate(secret) == key
    assert await store.authenticate(secret + "x") is None
    assert [k.id for k in await store.list_api_keys(project)] == [key.id]
    revoked = await store.revoke_api_key(key.id)
    assert revoked.revoked_at is not None
    assert await store.authenticate(secret) is None
    with pytest.raises(errors.NotFound):
        await store.revoke_api_key(key.id)


def _asset(project: str, asset_id: str = "a1") -> taskstore.NewAsset:
    return taskstore.NewAsset(
        id=asset_id,
        project_id=project,
        name="clip.mp4",
        playback_id=assets.new_playback_id(asset_id),
        phase=assets.AssetPhase.WAITING,
        source={"type": "url", "url": "https://example.com/v.mp4"},
        options={},
    )


async def test_asset_mirrors_its_task(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    asset, _ = await store.create_asset(
        _asset(project),
        taskstore.NewTask(project_id=project, type="upload", params={}, output_asset_id="a1"),
        now=T0,
    )
    assert asset.phase is assets.AssetPhase.WAITING
    claimed = await claim_one(store)
    assert claimed.lease_token is not None
    assert (await store.get_asset("a1")).phase is assets.AssetPhase.PROCESSING
    await store.heartbeat(claimed.id, claimed.lease_token, lease_s=30, progress=0.4, now=T0)
    assert (await store.get_asset("a1")).progress == 0.4
    await store.complete(claimed.id, claimed.lease_token, output={}, asset_media={"size": 9})
    ready = await store.get_asset("a1", project)
    assert ready.phase is assets.AssetPhase.READY
    assert ready.media == {"size": 9}
    with pytest.raises(errors.NotFound):
        await store.get_asset("a1", "another-project")


async def test_failed_task_fails_its_asset_and_retry_revives_it(
    store: taskstore.TaskStore,
) -> None:
    project = await new_project(store)
    await store.create_asset(
        _asset(project),
        taskstore.NewTask(project_id=project, type="upload", params={}, output_asset_id="a1"),
        now=T0,
    )
    claimed = await claim_one(store)
    assert claimed.lease_token is not None
    await store.fail(claimed.id, claimed.lease_token, error_message="bad file")
    failed = await store.get_asset("a1")
    assert failed.phase is assets.AssetPhase.FAILED
    assert failed.error_message == "bad file"
    await store.retry(claimed.id, project)
    assert (await store.get_asset("a1")).phase is assets.AssetPhase.WAITING


async def test_delete_asset_cancels_its_task(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    _, task = await store.create_asset(
        _asset(project),
        taskstore.NewTask(project_id=project, type="upload", params={}, output_asset_id="a1"),
    )
    with pytest.raises(errors.NotFound):
        await store.delete_asset("a1", "another-project")
    deleted = await store.delete_asset("a1", project)
    assert deleted.phase is assets.AssetPhase.DELETED
    assert (await store.get_task(task.id)).phase is tasks.Phase.CANCELLED
    with pytest.raises(errors.NotFound):
        await store.get_asset("a1")
    with pytest.raises(errors.NotFound):
        await store.delete_asset("a1", project)
    page = await store.list_assets(taskstore.Query(project_id=project))
    assert page.items == []


async def test_wait_for_work_wakes_on_new_task(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    await store.wait_for_work(0.01)  # connects a listener where the backend has one
    waiter = asyncio.create_task(store.wait_for_work(10))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await add(store, project)
    await asyncio.wait_for(waiter, 5)
    assert loop.time() - started < 1


# -- webhooks and the outbox -------------------------------------------------------------------
async def _hook(store: taskstore.TaskStore, project: str, events: list[str]) -> taskstore.Webhook:
    return await store.create_webhook(
        project, name="h", url="https://hooks.example.com/x", events=events, shared_secret="s"
    )


async def _due(store: taskstore.TaskStore, now: datetime = T0) -> list[taskstore.Delivery]:
    await store.dispatch_events(now=now)
    return await store.claim_deliveries(limit=100, lock_s=60, now=now)


async def test_transitions_emit_events_in_their_transaction(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    await _hook(store, project, ["task.spawned", "task.updated", "task.completed"])
    task = await add(store, project)
    with pytest.raises(errors.LeaseLost):  # a refused change emits nothing
        await store.complete(task.id, "nope", output={}, now=T0)
    claimed = await claim_one(store)
    assert claimed.lease_token is not None
    await store.heartbeat(claimed.id, claimed.lease_token, lease_s=30, progress=0.5, now=T0)
    await store.heartbeat(
        claimed.id, claimed.lease_token, lease_s=30, progress=0.6, announce=True, now=T0
    )
    await store.complete(claimed.id, claimed.lease_token, output={}, now=T0)
    due = await _due(store)
    names = [d.event.name for d in sorted(due, key=lambda d: (d.event.created_at, d.id))]
    assert sorted(names) == sorted(
        ["task.spawned", "task.updated", "task.updated", "task.updated", "task.completed"]
    )
    completed = next(d for d in due if d.event.name == "task.completed")
    assert completed.event.payload["success"] is True
    assert completed.event.payload["row"]["phase"] == "completed"
    assert len({d.event.id for d in due}) == 5


async def test_dispatch_only_to_subscribed_webhooks_of_the_project(
    store: taskstore.TaskStore,
) -> None:
    project, other = await new_project(store), await new_project(store)
    wanted = await _hook(store, project, ["task.spawned"])
    await _hook(store, project, ["task.failed"])
    await _hook(store, other, ["task.spawned"])
    gone = await _hook(store, project, ["task.spawned"])
    await store.delete_webhook(gone.id, project)
    await add(store, project)
    due = await _due(store)
    assert [(d.webhook.id, d.event.name) for d in due] == [(wanted.id, "task.spawned")]
    assert await store.dispatch_events(now=T0) == 0  # each event is fanned out once


async def test_deliveries_are_locked_and_retried(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    hook = await _hook(store, project, ["task.spawned"])
    await add(store, project)
    [delivery] = await _due(store)
    assert await store.claim_deliveries(limit=10, lock_s=60, now=T0) == []  # locked
    entry = await store.finish_attempt(
        delivery,
        success=False,
        duration_ms=5,
        request={"url": hook.url},
        response={"status": 503},
        retry_at=T0 + timedelta(seconds=5),
        now=T0,
    )
    assert entry.success is False and entry.event == "task.spawned"
    assert await store.claim_deliveries(limit=10, lock_s=60, now=T0) == []
    [again] = await store.claim_deliveries(limit=10, lock_s=60, now=T0 + timedelta(seconds=5))
    assert again.id == delivery.id and again.attempts == 1
    await store.finish_attempt(
        again, success=True, duration_ms=5, request={}, response={"status": 200}, retry_at=None
    )
    later = T0 + timedelta(hours=1)
    assert await store.claim_deliveries(limit=10, lock_s=60, now=later) == []
    log = await store.list_webhook_log(hook.id, project)
    assert [e.success for e in log] == [True, False]
    assert (await store.get_webhook(hook.id, project)).last_failure is not None
    assert await store.list_webhook_log(hook.id, "another-project") == []


async def test_a_lost_sender_lock_expires(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    await _hook(store, project, ["task.spawned"])
    await add(store, project)
    [delivery] = await _due(store)
    [retaken] = await store.claim_deliveries(limit=10, lock_s=60, now=T0 + timedelta(seconds=61))
    assert retaken.id == delivery.id
    stale = await store.finish_attempt(  # the first sender's late answer changes nothing
        delivery, success=True, duration_ms=1, request={}, response={}, retry_at=None
    )
    assert stale.success is True
    assert await store.claim_deliveries(limit=10, lock_s=60, now=T0 + timedelta(seconds=200))


async def test_webhooks_are_scoped_to_their_project(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    hook = await _hook(store, project, ["task.spawned"])
    for call in (
        store.get_webhook(hook.id, "another-project"),
        store.delete_webhook(hook.id, "another-project"),
        store.update_webhook(
            hook.id, "another-project", name="x", url="https://x", events=[], shared_secret=None
        ),
    ):
        with pytest.raises(errors.NotFound):
            await call
    assert await store.list_webhooks("another-project") == []
    kept = await store.update_webhook(
        hook.id, project, name="y", url="https://y", events=["task.failed"], shared_secret=None
    )
    assert kept.shared_secret == "s" and kept.events == ["task.failed"]


async def test_queue_position(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    made = [await add(store, project, now=T0 + timedelta(seconds=i)) for i in range(3)]
    assert [await store.queue_position(t) for t in made] == [1, 2, 3]
