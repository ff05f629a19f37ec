"""The task store's export transactions on each backend: an asset's storage follows its pending
export through the task's transitions, and concurrent updates of one asset lose nothing."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from mediatasks import assets, errors, tasks, taskstore


async def ready_asset(store: taskstore.TaskStore, project_id: str) -> str:
    asset_id = str(uuid.uuid4())
    await store.create_asset(
        taskstore.NewAsset(
            id=asset_id,
            project_id=project_id,
            name="a",
            playback_id=assets.new_playback_id(asset_id),
            phase=assets.AssetPhase.WAITING,
            source={"type": "url", "url": "https://example.com/a.mp4"},
            options={},
        ),
        taskstore.NewTask(
            project_id=project_id, type="fixture", params={}, output_asset_id=asset_id
        ),
    )
    [claimed] = await store.claim("w", types=["fixture"], limit=1, lease_s=30)
    assert claimed.lease_token is not None
    await store.complete(claimed.id, claimed.lease_token, output={}, asset_media={"source": "k"})
    return asset_id


def export_task(project_id: str) -> taskstore.NewTask:
    return taskstore.NewTask(project_id=project_id, type=tasks.TaskType.EXPORT, params={"ipfs": {}})


async def test_storage_follows_the_pending_export(store: taskstore.TaskStore) -> None:
    project = (await store.create_project("p")).id
    asset_id = await ready_asset(store, project)
    first = await store.start_export(asset_id, project, export_task(project), ipfs_spec={})
    assert first.input_asset_id == asset_id and first.phase is tasks.Phase.WAITING
    storage = (await store.get_asset(asset_id)).storage
    assert storage["status"] == {"phase": "waiting", "tasks": {"pending": first.id}}

    [claimed] = await store.claim("w", types=["export"], limit=1, lease_s=30)
    assert claimed.lease_token is not None
    assert (await store.get_asset(asset_id)).storage["status"]["phase"] == "processing"
    await store.heartbeat(claimed.id, claimed.lease_token, lease_s=30, progress=0.5, announce=True)
    assert (await store.get_asset(asset_id)).storage["status"]["progress"] == 0.5
    await store.fail(claimed.id, claimed.lease_token, error_message="no node")
    status = (await store.get_asset(asset_id)).storage["status"]
    assert status == {"phase": "failed", "errorMessage": "no node", "tasks": {"failed": first.id}}

    await store.retry(first.id, project)  # a manual retry takes the pending place again
    assert (await store.get_asset(asset_id)).storage["status"]["tasks"]["pending"] == first.id
    [claimed] = await store.claim("w", types=["export"], limit=1, lease_s=30)
    assert claimed.lease_token is not None
    output = {"export": {"ipfs": {"videoFileCid": "bafyx", "videoFileUrl": "ipfs://bafyx"}}}
    await store.complete(claimed.id, claimed.lease_token, output=output)
    asset = await store.get_asset(asset_id)
    assert asset.phase is assets.AssetPhase.READY  # the input asset's own phase is untouched
    assert asset.storage["status"] == {"phase": "ready", "tasks": {"last": first.id}}
    assert asset.storage["ipfs"]["cid"] == "bafyx"


async def test_an_older_export_does_not_overwrite_a_newer_one(store: taskstore.TaskStore) -> None:
    project = (await store.create_project("p")).id
    asset_id = await ready_asset(store, project)
    older = await store.start_export(asset_id, project, export_task(project), ipfs_spec={})
    newer = await store.start_export(asset_id, project, export_task(project), ipfs_spec={"x": 1})
    await store.cancel(older.id, project)
    storage = (await store.get_asset(asset_id)).storage
    assert storage["status"] == {"phase": "waiting", "tasks": {"pending": newer.id}}
    assert storage["ipfs"]["spec"] == {"x": 1}
    await store.cancel(newer.id, project)
    status = (await store.get_asset(asset_id)).storage["status"]
    assert status["phase"] == "failed" and status["tasks"]["failed"] == newer.id


async def test_exports_need_a_ready_asset_of_the_project(store: taskstore.TaskStore) -> None:
    project = (await store.create_project("p")).id
    other = (await store.create_project("o")).id
    asset_id = await ready_asset(store, project)
    with pytest.raises(errors.NotFound):
        await store.start_export(asset_id, other, export_task(other))
    with pytest.raises(errors.NotFound):
        await store.patch_asset(asset_id, other, taskstore.AssetPatch(name="x"))
    await store.delete_asset(asset_id, project)
    with pytest.raises(errors.NotFound):
        await store.start_export(asset_id, project, export_task(project))
    assert await store.count_tasks(tasks.Phase.WAITING) == 0


async def test_concurrent_patches_lose_nothing(store: taskstore.TaskStore) -> None:
    project = (await store.create_project("p")).id
    asset_id = await ready_asset(store, project)
    count = 12
    results = await asyncio.gather(
        *(
            store.patch_asset(asset_id, project, taskstore.AssetPatch(options={f"k{i}": i}))
            for i in range(count)
        ),
        store.start_export(asset_id, project, export_task(project), ipfs_spec={}),
    )
    asset = await store.get_asset(asset_id)
    assert {key: asset.options[key] for key in asset.options} == {f"k{i}": i for i in range(count)}
    export = results[-1]
    assert isinstance(export, tasks.Task)
    assert asset.storage["status"]["tasks"]["pending"] == export.id
