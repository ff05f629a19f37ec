"""One contract for every task store backend: each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from mediatasks import assets, errors, tasks, taskstore
from mediatasks.taskstore.rows import asset_from_row, task_from_row
from mediatasks.webhooks import message as webhook_events
from tests import tcpproxy

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


async def test_a_task_behind_the_claim_cursor_is_still_claimed(
    store: taskstore.TaskStore,
) -> None:
    # A claim starts where the store's previous claim left off: a task that becomes runnable
    # with an older run_at (it committed late, or its creator's clock is behind) is taken by the
    # first claim that finds fewer tasks than it asks for, the next one at the latest.
    project = await new_project(store)
    late = T0 + timedelta(hours=1)
    for i in range(3):
        await add(store, project, now=late + timedelta(seconds=i))
    first = await store.claim("w", types=TYPES, limit=2, lease_s=30, now=late + timedelta(hours=1))
    assert len(first) == 2
    behind = await add(store, project, now=T0)
    ahead = await add(store, project, now=late + timedelta(seconds=10))
    second = await store.claim("w", types=TYPES, limit=2, lease_s=30, now=late + timedelta(hours=1))
    third = await store.claim("w", types=TYPES, limit=2, lease_s=30, now=late + timedelta(hours=1))
    taken = {task.id for task in second + third}
    assert behind.id in taken and ahead.id in taken and len(taken) == 3
    assert await store.count_tasks(tasks.Phase.WAITING) == 0


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


async def test_queue_depth_of_one_project_leaves_the_others_out(
    store: taskstore.TaskStore,
) -> None:
    mine, theirs = await new_project(store), await new_project(store)
    await add(store, mine)
    await add(store, theirs)
    await add(store, theirs, type="upload", phase=tasks.Phase.PENDING)
    assert await store.queue_depth(mine) == {("noop", tasks.Phase.WAITING): 1}
    assert await store.queue_depth(theirs) == {
        ("noop", tasks.Phase.WAITING): 1,
        ("upload", tasks.Phase.PENDING): 1,
    }
    assert await store.queue_depth("no-such-project") == {}
    assert await store.queue_depth() == {
        ("noop", tasks.Phase.WAITING): 2,
        ("upload", tasks.Phase.PENDING): 1,
    }


async def test_finished_counts_per_minute_of_one_project(store: taskstore.TaskStore) -> None:
    mine, theirs = await new_project(store), await new_project(store)

    async def finish(project: str, at: datetime, *, ok: bool) -> tasks.Task:
        task = await add(store, project, now=at)
        claimed = await store.claim("w", types=TYPES, limit=1, lease_s=30, now=at)
        assert [c.id for c in claimed] == [task.id]
        token = claimed[0].lease_token
        assert token is not None
        if ok:
            return await store.complete(task.id, token, output={}, now=at)
        return await store.fail(task.id, token, error_message="broken", now=at)

    await finish(mine, T0 + timedelta(seconds=5), ok=True)
    await finish(mine, T0 + timedelta(seconds=59, milliseconds=999), ok=True)
    failed = await finish(mine, T0 + timedelta(minutes=2, seconds=1), ok=False)
    await finish(mine, T0 + timedelta(minutes=3), ok=True)  # at :until: not counted
    await finish(mine, T0 - timedelta(milliseconds=1), ok=False)  # before :since
    await finish(mine, T0 + timedelta(minutes=2, seconds=20), ok=False)
    await finish(theirs, T0 + timedelta(seconds=30), ok=True)
    before = await store.finished_counts(mine, since=T0, until=T0 + timedelta(minutes=3))
    assert before[2] == taskstore.FinishedCount(
        start=T0 + timedelta(minutes=2), completed=0, failed=2
    )
    # A failed task retried counts no more as a failure, and counts when it finishes again.
    retried = await store.retry(failed.id, mine, now=T0 + timedelta(minutes=2, seconds=30))
    assert retried.phase is tasks.Phase.WAITING
    [again] = await store.claim(
        "w", types=TYPES, limit=1, lease_s=30, now=T0 + timedelta(minutes=2, seconds=40)
    )
    assert again.id == failed.id and again.lease_token is not None
    await store.complete(
        again.id, again.lease_token, output={}, now=T0 + timedelta(minutes=2, seconds=50)
    )

    counts = await store.finished_counts(mine, since=T0, until=T0 + timedelta(minutes=3))
    assert counts == [
        taskstore.FinishedCount(start=T0, completed=2, failed=0),
        taskstore.FinishedCount(start=T0 + timedelta(minutes=1), completed=0, failed=0),
        taskstore.FinishedCount(start=T0 + timedelta(minutes=2), completed=1, failed=1),
    ]
    assert await store.finished_counts(theirs, since=T0, until=T0 + timedelta(minutes=1)) == [
        taskstore.FinishedCount(start=T0, completed=1, failed=0)
    ]
    halves = await store.finished_counts(
        mine, since=T0, until=T0 + timedelta(minutes=1), interval_s=30
    )
    assert [(c.start, c.completed) for c in halves] == [
        (T0, 1),
        (T0 + timedelta(seconds=30), 1),
    ]
    empty = await store.finished_counts("nobody", since=T0, until=T0 + timedelta(minutes=60))
    assert len(empty) == 60 and not any(c.completed or c.failed for c in empty)
    assert empty[-1].start == T0 + timedelta(minutes=59)


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


async def test_rescue_requeues_at_once_without_spending_retries(
    store: taskstore.TaskStore,
) -> None:
    """A lost lease is not the input's fault: the task runs again at once, its retries untouched;
    a task that keeps losing its workers fails after ``max_rescues``."""
    project = await new_project(store)
    await add(store, project, max_retries=1)
    policy = taskstore.RescuePolicy(max_rescues=2)
    task = await claim_one(store, lease_s=10)
    assert await store.rescue(policy, now=T0 + timedelta(seconds=9)) == []
    [rescued] = await store.rescue(policy, now=T0 + timedelta(seconds=11))
    assert rescued.phase is tasks.Phase.WAITING
    assert (rescued.retries, rescued.rescues, rescued.attempt) == (0, 1, 1)
    assert rescued.error_message == policy.error_message
    assert rescued.run_at == T0 + timedelta(seconds=11)
    assert task.lease_token is not None
    with pytest.raises(errors.LeaseLost):
        await store.complete(task.id, task.lease_token, output={}, now=T0)
    again = await claim_one(store, now=T0 + timedelta(seconds=11), lease_s=10)
    [rescued] = await store.rescue(policy, now=T0 + timedelta(seconds=22))
    assert (rescued.phase, rescued.retries, rescued.rescues) == (tasks.Phase.WAITING, 0, 2)
    await claim_one(store, now=T0 + timedelta(seconds=22), lease_s=10)
    [failed] = await store.rescue(policy, now=T0 + timedelta(seconds=33))
    assert failed.phase is tasks.Phase.FAILED
    assert failed.error_message == f"{policy.error_message} (3 times)"
    events = [e.name for e in await store.list_events(task.id)]
    assert events.count("rescue") == 3 and events.count("claim") == 3
    retried = await store.retry(task.id, project, now=T0 + timedelta(seconds=40))
    assert (retried.retries, retried.rescues) == (0, 0)
    assert again.attempt == 2


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


async def test_imports_of_one_url_at_once_create_one_asset(
    store: taskstore.TaskStore, store_url: str
) -> None:
    """Imports of one URL from two processes at once: one asset, the others find it."""
    project = await new_project(store)
    other = taskstore.open_task_store(store_url)
    url = "https://example.com/v.mp4"

    async def start(on: taskstore.TaskStore, i: int) -> tuple[str, bool]:
        asset, task, created = await on.create_url_import(
            _asset(project, f"a{i}"),
            taskstore.NewTask(
                project_id=project, type="upload", params={}, output_asset_id=f"a{i}"
            ),
            url=url,
            since=T0 - timedelta(minutes=15),
            now=T0,
        )
        assert task.output_asset_id == asset.id
        return asset.id, created

    try:
        results = await asyncio.gather(*(start(store if i % 2 else other, i) for i in range(8)))
    finally:
        await other.close()
    assert sum(created for _, created in results) == 1
    assert len({asset_id for asset_id, _ in results}) == 1
    elsewhere, _, created = await store.create_url_import(
        _asset(project, "b1"),
        taskstore.NewTask(project_id=project, type="upload", params={}, output_asset_id="b1"),
        url=url + "?other",
        since=T0 - timedelta(minutes=15),
        now=T0,
    )
    assert created and elsewhere.id == "b1"


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


async def _lock_waiters(conn: psycopg.AsyncConnection[Any], n: int) -> None:
    """Wait until ``n`` other sessions of this database wait for a row lock."""
    for _ in range(500):
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        cursor = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = await cursor.fetchone()
        if row is not None and row[0] >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {n} sessions waited for a lock")


async def _upload_asset(store: taskstore.TaskStore) -> str:
    """A new project with the asset ``a1`` and the upload task that fills it; the project."""
    project = await new_project(store)
    await store.create_asset(
        _asset(project),
        taskstore.NewTask(project_id=project, type="upload", params={}, output_asset_id="a1"),
        now=T0,
    )
    return project


def _pause(
    monkeypatch: pytest.MonkeyPatch, obj: Any, name: str
) -> tuple[asyncio.Event, asyncio.Event]:
    """Pause ``obj``'s coroutine method ``name`` when it is called: the first event is set then,
    and the call goes on once the second is set."""
    between, go_on = asyncio.Event(), asyncio.Event()
    original = getattr(obj, name)

    async def paused(*args: Any, **kwargs: Any) -> Any:
        between.set()
        await go_on.wait()
        return await original(*args, **kwargs)

    monkeypatch.setattr(obj, name, paused)
    return between, go_on


@pytest.mark.postgres
async def test_a_retry_while_its_asset_is_being_deleted_waits_and_is_refused(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a manual retry that runs while the deletion of the task's asset has not
    committed yet (READ COMMITTED: its snapshot still shows the asset) waits for the deletion,
    then sees it, rather than leaving a waiting task on a deleted asset."""
    store = taskstore.open_task_store(pg_url, timeout_s=10)
    try:
        project = await _upload_asset(store)
        failed = await claim_one(store)
        assert failed.lease_token is not None
        await store.fail(failed.id, failed.lease_token, error_message="bad file", now=T0)
        # A second, unfinished task of the asset: the deletion cancels it, and is paused there,
        # with the asset marked deleted but not committed.
        other = await add(store, project, output_asset_id="a1")
        between, go_on = _pause(monkeypatch, store, "_cancel")
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as watcher:
            deletion = asyncio.create_task(store.delete_asset("a1", project))
            await between.wait()
            retry = asyncio.create_task(store.retry(failed.id, project))
            await _lock_waiters(watcher, 1)
            go_on.set()
            assert (await deletion).phase is assets.AssetPhase.DELETED
            with pytest.raises(errors.InvalidTransition, match="deleted"):
                await retry
        assert (await store.get_task(failed.id)).phase is tasks.Phase.FAILED
        assert (await store.get_task(other.id)).phase is tasks.Phase.CANCELLED
    finally:
        await store.close()


async def test_concurrent_retries_of_tasks_of_one_asset_all_go_through(
    store: taskstore.TaskStore,
) -> None:
    """Each retry locks its task's asset before it updates it (the asset follows the task): at
    once, they take turns rather than deadlock."""
    project = await new_project(store)
    for round_ in range(10):
        asset_id = f"a{round_}"
        await store.create_asset(
            _asset(project, asset_id),
            taskstore.NewTask(
                project_id=project, type="upload", params={}, output_asset_id=asset_id
            ),
        )
        both = [await add(store, project, output_asset_id=asset_id) for _ in range(2)]
        for task in both:
            await store.cancel(task.id, project)
        retried = await asyncio.gather(*(store.retry(task.id, project) for task in both))
        assert [task.phase for task in retried] == [tasks.Phase.WAITING] * 2


async def _row_is_free(conn: psycopg.AsyncConnection[Any], table: str, row_id: str) -> bool:
    """Whether no other transaction holds a lock on the row ``row_id`` of ``table`` now."""
    try:
        async with conn.transaction():
            await conn.execute(
                f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE NOWAIT".encode(), (row_id,)
            )
    except psycopg.errors.LockNotAvailable:
        return False
    return True


@pytest.mark.postgres
async def test_a_deletion_while_its_task_fails_waits_for_the_task_first(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a worker's outcome locks its task's row, then its asset's (the asset follows
    its task).  A deletion of the asset that comes in between waits for the task without holding
    the asset, so both go through, rather than taking the rows in the other order and being
    aborted as a deadlock a second later.  (The worker's ``fail`` is paused between its two
    statements; the deletion and the outcome are the stores' own.)"""
    api = taskstore.open_task_store(pg_url, timeout_s=10)
    worker = taskstore.open_task_store(pg_url, timeout_s=10)
    try:
        project = await _upload_asset(api)
        running = await claim_one(worker)
        assert running.lease_token is not None
        between, go_on = _pause(monkeypatch, worker, "_mirror")
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as watcher:
            failing = asyncio.create_task(
                worker.fail(running.id, running.lease_token, error_message="bad file")
            )
            await between.wait()  # the task's row is locked, its asset's not yet
            deletion = asyncio.create_task(api.delete_asset("a1", project))
            await _lock_waiters(watcher, 1)  # the deletion waits for the task
            asset_free = await _row_is_free(watcher, "assets", "a1")
            go_on.set()
            failed = await failing
            deleted = await deletion
        assert asset_free, "the deletion held the asset while it waited for the task"
        assert failed.phase is tasks.Phase.FAILED
        assert deleted.phase is assets.AssetPhase.DELETED
        assert (await api.get_task(running.id)).phase is tasks.Phase.FAILED
    finally:
        await worker.close()
        await api.close()


async def _fail_in_a_deadlock(pg_url: str) -> tasks.Task:
    """A worker's ``fail`` caught in a deadlock with a session that takes the task's asset and
    then its task (the order opposite to the outcome's); PostgreSQL aborts the outcome, the
    first to wait.  The raw session stands for a lock order that the store never takes itself
    but cannot rule out (a deletion that finds a task made runnable and claimed after it locked
    the others)."""
    store = taskstore.open_task_store(pg_url, timeout_s=10)
    try:
        await _upload_asset(store)
        running = await claim_one(store)
        assert running.lease_token is not None
        async with (
            await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as watcher,
            await psycopg.AsyncConnection.connect(pg_url) as holder,
        ):
            await holder.execute("UPDATE assets SET updated_at = updated_at WHERE id = 'a1'")
            failing = asyncio.create_task(
                store.fail(running.id, running.lease_token, error_message="bad file")
            )
            await _lock_waiters(watcher, 1)  # the outcome holds the task and waits for the asset
            await holder.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (running.id,))
            await holder.commit()
            return await failing
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_write_rolled_back_for_a_deadlock_runs_again(pg_url: str) -> None:
    """PostgreSQL: the outcome that the server aborted to break a deadlock runs again, on a new
    transaction, once the other side went through: the worker sees no error."""
    failed = await _fail_in_a_deadlock(pg_url)
    assert failed.phase is tasks.Phase.FAILED
    store = taskstore.open_task_store(pg_url)
    try:
        assert (await store.get_asset("a1")).phase is assets.AssetPhase.FAILED
        assert [e.name for e in await store.list_events(failed.id)].count("fail") == 1
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_write_that_keeps_deadlocking_is_a_conflict_not_an_outage(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a change still caught in a deadlock after its reruns (none here) raises
    ``Conflict`` (try again), not ``Unavailable``: the server answers, other changes got in its
    way."""
    from mediatasks.taskstore import postgres

    monkeypatch.setattr(postgres, "_RERUNS", 0)
    with pytest.raises(errors.Conflict, match="deadlock detected"):
        await _fail_in_a_deadlock(pg_url)


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
    assert await store.list_webhook_log(hook.id, project, success=True) == log[:1]
    assert await store.list_webhook_log(hook.id, project, success=False) == log[1:]
    assert await store.list_webhook_log(hook.id, "another-project", success=False) == []
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


async def test_a_view_holds_the_output_asset_and_the_queue_position(
    store: taskstore.TaskStore,
) -> None:
    project = await new_project(store)
    for n in (1, 2):
        await store.create_asset(
            _asset(project, f"a{n}"),
            taskstore.NewTask(
                project_id=project, type="upload", params={}, output_asset_id=f"a{n}"
            ),
            now=T0 + timedelta(seconds=n),
        )
    done = await claim_one(store, now=T0 + timedelta(seconds=10))
    await store.complete(done.id, done.lease_token or "", output={"upload": {}}, asset_media={})
    await add(store, project, now=T0 + timedelta(seconds=5))

    view = await store.view_task(done.id, project)
    assert view.task == await store.get_task(done.id)
    assert view.output_asset == await store.get_asset("a1")
    assert view.queue_position is None
    with pytest.raises(errors.NotFound):
        await store.view_task(done.id, "another-project")

    async def expected(task: tasks.Task) -> taskstore.TaskView:
        waiting = task.phase is tasks.Phase.WAITING
        return taskstore.TaskView(
            task=task,
            output_asset=await store.get_asset("a1") if task.id == done.id else None,
            queue_position=await store.queue_position(task) if waiting else None,
        )

    query = taskstore.Query(project_id=project, limit=2, with_total=True)
    seen = []
    while True:
        page, views = await store.list_tasks(query), await store.view_tasks(query)
        assert list(views.items) == [await expected(task) for task in page.items]
        assert (views.total, views.next_after) == (page.total, page.next_after) != (None, None)
        seen.extend(view.task.id for view in views.items)
        if page.next_after is None:
            break
        query = dataclasses.replace(query, after=page.next_after)
    assert len(seen) == 3 and done.id in seen
    positions = [(await store.view_task(task_id)).queue_position for task_id in seen]
    assert sorted(p for p in positions if p is not None) == [1, 2]

    await store.delete_asset("a1", project)
    assert (await store.view_task(done.id)).output_asset is None
    everything = await store.view_tasks(taskstore.Query(project_id=project))
    assert all(view.output_asset is None for view in everything.items)


# -- batches -----------------------------------------------------------------------------------
async def test_complete_many_completes_the_batch_and_skips_lost_leases(
    store: taskstore.TaskStore,
) -> None:
    project = await new_project(store)
    for _ in range(6):
        await add(store, project)
    claimed = await store.claim("w1", types=TYPES, limit=6, lease_s=30, now=T0)
    assert len(claimed) == 6
    cancelled, stale, *finished = claimed
    await store.cancel(cancelled.id, now=T0)
    batch = [
        taskstore.Completion(
            task_id=t.id, lease_token=t.lease_token or "", output={"n": i}, detail={"i": i}
        )
        for i, t in enumerate(claimed)
    ]
    batch[1] = taskstore.Completion(task_id=stale.id, lease_token="not-its-token", output={})
    done = await store.complete_many(batch, now=T0)
    assert done == {t.id for t in finished}
    for i, task in enumerate(finished, start=2):
        after = await store.get_task(task.id)
        assert (after.phase, after.output, after.lease_token) == (
            tasks.Phase.COMPLETED,
            {"n": i},
            None,
        )
        events = await store.list_events(task.id)
        assert [e.name for e in events] == ["created", "claim", "complete"]
        assert events[-1].data == {"i": i} and events[-1].phase is tasks.Phase.COMPLETED
    assert (await store.get_task(cancelled.id)).phase is tasks.Phase.CANCELLED
    assert [e.name for e in await store.list_events(cancelled.id)][-1] == "cancel"
    assert (await store.get_task(stale.id)).phase is tasks.Phase.RUNNING
    assert [e.name for e in await store.list_events(stale.id)] == ["created", "claim"]
    assert await store.complete_many([], now=T0) == set()


async def test_one_claim_takes_a_batch_with_an_event_each(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    made = [await add(store, project, now=T0 + timedelta(milliseconds=i)) for i in range(30)]
    claimed = await store.claim("w1", types=TYPES, limit=25, lease_s=30, now=T0 + timedelta(1))
    assert [t.id for t in claimed] == [t.id for t in made[:25]]
    assert len({t.lease_token for t in claimed}) == 25
    for task in claimed:
        events = await store.list_events(task.id)
        assert [e.name for e in events] == ["created", "claim"]
        assert events[1].data == {"worker": "w1", "attempt": 1}
        assert events[1].phase is tasks.Phase.RUNNING


async def test_beat_extends_held_leases_and_names_the_lost(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    for _ in range(3):
        await add(store, project)
    claimed = await store.claim("w1", types=TYPES, limit=3, lease_s=5, now=T0)
    await store.cancel(claimed[0].id, now=T0)
    held = {t.id: t.lease_token or "" for t in claimed}
    held[claimed[2].id] = "not-its-token"
    later = T0 + timedelta(seconds=4)
    assert await store.beat("w1", held, lease_s=5, now=later) == {claimed[1].id}
    kept = await store.get_task(claimed[1].id)
    assert kept.lease_expires_at == later + timedelta(seconds=5)
    assert kept.updated_at == T0  # extending a lease is not a change anyone sees
    policy = taskstore.RescuePolicy()
    [lost] = await store.rescue(policy, now=T0 + timedelta(seconds=6))
    assert lost.id == claimed[2].id  # its lease was not extended


# -- the outbox --------------------------------------------------------------------------------
async def test_no_outbox_rows_without_a_subscribed_webhook(store: taskstore.TaskStore) -> None:
    quiet, watched = await new_project(store), await new_project(store)
    hook = await _hook(store, watched, ["task.completed"])
    for project in (quiet, watched):
        await add(store, project)
    claimed = await store.claim("w1", types=TYPES, limit=2, lease_s=30, now=T0)
    done = [
        taskstore.Completion(task_id=t.id, lease_token=t.lease_token or "", output={})
        for t in claimed
    ]
    assert len(await store.complete_many(done, now=T0)) == 2
    # Only the one event that a webhook subscribes to was written at all.
    assert await store.dispatch_events(now=T0) == 1
    [delivery] = await store.claim_deliveries(limit=10, lock_s=60, now=T0)
    assert (delivery.webhook.id, delivery.event.name) == (hook.id, "task.completed")
    watched_task = next(t for t in claimed if t.project_id == watched)
    assert delivery.event.payload["success"] is True
    assert task_from_row(delivery.event.payload["row"]) == await store.get_task(watched_task.id)


async def test_outbox_payloads_are_the_rows_of_their_transaction(
    store: taskstore.TaskStore,
) -> None:
    project = await new_project(store)
    await _hook(store, project, list(webhook_events.EVENTS))
    await store.create_asset(
        _asset(project),
        taskstore.NewTask(project_id=project, type="upload", params={"p": 1}, output_asset_id="a1"),
        now=T0,
    )
    claimed = await claim_one(store)
    assert claimed.lease_token is not None
    await store.complete(claimed.id, claimed.lease_token, output={"o": 1}, asset_media={"m": 1})
    due = await _due(store)
    by_name: dict[str, list[taskstore.Delivery]] = {}
    for delivery in due:
        by_name.setdefault(delivery.event.name, []).append(delivery)
    assert sorted(by_name) == sorted(
        [
            "asset.created",
            "asset.updated",
            "asset.ready",
            "task.spawned",
            "task.updated",
            "task.completed",
        ]
    )
    spawned = task_from_row(by_name["task.spawned"][0].event.payload["row"])
    assert (spawned.phase, spawned.params, spawned.output_asset_id) == ("waiting", {"p": 1}, "a1")
    completed = by_name["task.completed"][0].event.payload
    assert task_from_row(completed["row"]) == await store.get_task(claimed.id)
    assert (
        completed["success"] is True and "success" not in by_name["task.updated"][0].event.payload
    )
    ready = asset_from_row(by_name["asset.ready"][0].event.payload["row"])
    assert ready.media == {"m": 1}


# -- the worker registry and rescue ------------------------------------------------------------
def _identity(worker_id: str, node: str = "node-a") -> taskstore.WorkerIdentity:
    return taskstore.WorkerIdentity(id=worker_id, host="h", node=node, pid=4242)


async def test_registry_lists_workers_with_what_they_run(store: taskstore.TaskStore) -> None:
    project = await new_project(store)
    await store.register_worker(_identity("w1"), now=T0)
    await store.register_worker(_identity("w2"), now=T0 - timedelta(hours=1))
    task = await add(store, project)
    await store.claim("w1", types=TYPES, limit=1, lease_s=30, now=T0)
    await store.beat("w1", {}, lease_s=30, now=T0 + timedelta(seconds=1))
    [seen] = await store.list_workers(T0 - timedelta(minutes=1))
    assert (seen.id, seen.host, seen.node, seen.pid) == ("w1", "h", "node-a", 4242)
    assert seen.last_seen_at == T0 + timedelta(seconds=1) and seen.stopped_at is None
    assert [(r.id, r.type, r.project_id) for r in seen.running] == [(task.id, "noop", project)]
    assert {w.id for w in await store.list_workers(T0 - timedelta(hours=2))} == {"w1", "w2"}
    await store.deregister_worker("w2", now=T0 + timedelta(seconds=2))
    stopped = {w.id: w for w in await store.list_workers(T0 - timedelta(minutes=1))}["w2"]
    assert stopped.stopped_at == T0 + timedelta(seconds=2) and stopped.running == ()


async def test_tasks_of_dead_or_stopped_workers_are_rescued_before_their_lease_ends(
    store: taskstore.TaskStore,
) -> None:
    project = await new_project(store)
    for worker_id in ("dead", "stopped", "alive"):
        await store.register_worker(_identity(worker_id), now=T0)
        await add(store, project)
        await store.claim(worker_id, types=TYPES, limit=1, lease_s=600, now=T0)
    await store.deregister_worker("stopped", now=T0)
    policy = taskstore.RescuePolicy()
    rescued = await store.rescue(policy, dead_workers=["dead"], now=T0 + timedelta(seconds=1))
    assert sorted((t.phase, t.retries, t.rescues) for t in rescued) == [
        (tasks.Phase.WAITING, 0, 1),
        (tasks.Phase.WAITING, 0, 1),
    ]
    running = await store.list_workers(T0 - timedelta(minutes=1))
    assert {w.id: len(w.running) for w in running} == {"dead": 0, "stopped": 0, "alive": 1}
    assert {w.id for w in running if w.stopped_at is not None} == {"dead", "stopped"}
    again = await store.claim("alive", types=TYPES, limit=5, lease_s=600, now=T0 + timedelta(1))
    assert [t.attempt for t in again] == [2, 2]


@pytest.mark.postgres
async def test_a_worker_whose_session_is_gone_is_dead(pg_url: str) -> None:
    """PostgreSQL: a worker's liveness is its session's advisory lock, released by the server
    when the worker's connection goes (its process died), not when its lease runs out."""
    store = taskstore.open_task_store(pg_url)
    gone = taskstore.open_task_store(pg_url)
    try:
        project = await new_project(store)
        await add(store, project)
        start = datetime.now(UTC)
        await gone.register_worker(_identity("far", node="another-machine"), now=start)
        [task] = await gone.claim("far", types=TYPES, limit=1, lease_s=600, now=start)
        policy = taskstore.RescuePolicy(silent_s=3)
        later = start + timedelta(seconds=5)
        assert await store.rescue(policy, now=later) == []  # silent, but its session holds on
        await gone.close()  # the server drops the session, and the lock with it
        await asyncio.sleep(0.2)
        assert await store.rescue(policy, now=start + timedelta(seconds=2)) == []  # not silent
        [rescued] = await store.rescue(policy, now=later)
        assert (rescued.id, rescued.phase, rescued.rescues) == (task.id, tasks.Phase.WAITING, 1)
    finally:
        await gone.close()
        await store.close()


@pytest.mark.postgres
async def test_leases_that_ran_out_while_the_server_was_down_wait_for_their_workers(
    pg_url: str,
) -> None:
    """PostgreSQL: just after the server started (a restart), a lease that ran out is not yet a
    lost worker: its worker, alive, reconnects and saves its work within ``silent_s``."""
    store = taskstore.open_task_store(pg_url)
    try:
        project = await new_project(store)
        await add(store, project)
        with psycopg.connect(pg_url) as conn:
            row = conn.execute(b"SELECT pg_postmaster_start_time()").fetchone()
        assert row is not None
        started: datetime = row[0]
        policy = taskstore.RescuePolicy(silent_s=3)
        at = started + timedelta(seconds=0.1)
        [task] = await store.claim("w", types=TYPES, limit=1, lease_s=0.5, now=at)
        # The lease ran out 1.4 s ago, but the server has been up for 2 s only.
        assert await store.rescue(policy, now=started + timedelta(seconds=2)) == []
        [rescued] = await store.rescue(policy, now=started + timedelta(seconds=3.5))
        assert (rescued.id, rescued.phase, rescued.rescues) == (task.id, tasks.Phase.WAITING, 1)
        events = await store.list_events(task.id)
        assert events[-1].data["because"] == "its lease expired"
    finally:
        await store.close()


# -- outages -----------------------------------------------------------------------------------
async def _unavailable_within(call: Callable[[], Awaitable[object]], limit_s: float) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(errors.Unavailable):
        await call()
    took = loop.time() - started
    assert took < limit_s, f"Unavailable after {took:.2f} s"
    return took


async def _back_within(call: Callable[[], Awaitable[object]], limit_s: float) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        try:
            await call()
        except errors.Unavailable:
            if loop.time() - started > limit_s:
                raise
            await asyncio.sleep(0.1)
        else:
            return loop.time() - started


async def test_a_locked_sqlite_database_answers_unavailable_in_time(sqlite_url: str) -> None:
    """Another process holding the write lock makes writes fail fast, not hang for 30 s; reads go
    on, and writes work again as soon as the lock is let go."""
    store = taskstore.open_task_store(sqlite_url)
    try:
        await store.migrate()
        project = await new_project(store)
        task = await add(store, project)
        holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        loop = asyncio.get_running_loop()
        beats = 0

        async def ticking() -> None:
            nonlocal beats
            while True:
                await asyncio.sleep(0.01)
                beats += 1

        ticker = asyncio.create_task(ticking())
        took = await _unavailable_within(lambda: add(store, project), 2.0)
        ticker.cancel()
        assert beats >= took / 0.01 * 0.5, "the event loop was blocked while waiting"
        assert (await store.get_task(task.id)).id == task.id  # reads are not blocked
        holder.execute("ROLLBACK")
        started = loop.time()
        await add(store, project)
        assert loop.time() - started < 1
        holder.close()
    finally:
        await store.close()


@pytest.fixture
def proxied_pg(pg_url: str) -> Iterator[tuple[str, tcpproxy.Proxy]]:
    """The test's database reached through a proxy that the test can break."""
    parts = urllib.parse.urlsplit(pg_url)
    with tcpproxy.proxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        yield parts._replace(netloc=f"postgres@127.0.0.1:{proxy.port}").geturl(), proxy


@pytest.mark.postgres
@pytest.mark.parametrize("shape", ["refuse", "hang", "hang-then-refuse"])
async def test_postgres_outages_answer_unavailable_in_time_and_recover(
    proxied_pg: tuple[str, tcpproxy.Proxy], shape: str
) -> None:
    url, proxy = proxied_pg
    store = taskstore.open_task_store(url)
    try:
        await store.migrate()
        project = await new_project(store)
        task = await add(store, project)
        # Warm connections, some of which will die or hang with the outage.
        await asyncio.gather(*(store.get_task(task.id) for _ in range(6)))
        for step in shape.split("-then-"):
            _break(proxy, step)
            for call in (lambda: store.get_task(task.id), lambda: add(store, project)):
                await _unavailable_within(call, 2.0)
            await _unavailable_within(
                lambda: store.claim("w", types=TYPES, limit=5, lease_s=30), 2.0
            )
        proxy.restore()
        took = await _back_within(lambda: store.get_task(task.id), 5.0)
        print(f"\n{shape}: back {took:.2f} s after the store came back")
        await add(store, project)
        # A claim given up on during the outage may commit once the store is back: it hands its
        # tasks back at once, so that the task is soon claimable again.
        claimed: set[str] = set()
        async with asyncio.timeout(5):
            while task.id not in claimed:
                claimed |= {t.id for t in await store.claim("w", types=TYPES, limit=5, lease_s=30)}
                await asyncio.sleep(0.05)
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_claim_given_up_on_that_commits_after_all_hands_its_tasks_back(
    proxied_pg: tuple[str, tcpproxy.Proxy],
) -> None:
    url, proxy = proxied_pg
    store = taskstore.open_task_store(url)
    try:
        await store.migrate()
        project = await new_project(store)
        task = await add(store, project)
        proxy.blackhole()
        with pytest.raises(errors.Unavailable):
            await store.claim("w", types=TYPES, limit=5, lease_s=600)
        proxy.restore()  # the held claim reaches the server and commits
        async with asyncio.timeout(10):
            while [e.name for e in await _events_or_none(store, task.id)][-1:] != ["release"]:
                await asyncio.sleep(0.05)
        back = await store.get_task(task.id)
        assert (back.phase, back.attempt, back.lease_token) == (tasks.Phase.WAITING, 0, None)
    finally:
        await store.close()


async def _events_or_none(store: taskstore.TaskStore, task_id: str) -> list[tasks.TaskEvent]:
    try:
        return await store.list_events(task_id)
    except errors.Unavailable:
        return []


def _break(proxy: tcpproxy.Proxy, shape: str) -> None:
    """``refuse``: the server is down; ``hang``: it accepts and never answers."""
    if shape == "refuse":
        proxy.refuse()
    else:
        assert shape == "hang"
        proxy.blackhole()
