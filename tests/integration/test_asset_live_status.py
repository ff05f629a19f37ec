"""The live status of the Assets pages on each backend: every phase the asset's task went
through is shown, in order, even when several passed between two looks, and then it stops."""

from __future__ import annotations

from pathlib import Path

from mediatasks import service, settings, tasks, taskstore
from mediatasks.api.runtime import Runtime
from mediatasks.blobstore import local
from mediatasks.web import assets as page


async def test_every_phase_between_two_looks_is_shown(
    store: taskstore.TaskStore, tmp_path: Path
) -> None:
    config = settings.Settings(data_dir=tmp_path)
    runtime = Runtime(settings=config, store=store, blobs=local.LocalBlobStore(tmp_path / "b"))
    project = (await store.create_project("p")).id
    asset, task = await service.request_upload(
        store, config, project_id=project, name="clip", options={}
    )
    events = await store.list_events(task.id)
    followed = page._Followed(
        asset_id=asset.id,
        task_id=task.id,
        after_event=events[-1].id,
        last=await page._status(runtime, asset),  # what the page shows first
    )

    assert [s async for s in page._news(runtime, project, followed)] == []  # nothing new yet
    await store.schedule(task.id)
    [claimed] = await store.claim("w", types=[tasks.TaskType.UPLOAD], limit=1, lease_s=30)
    assert claimed.lease_token is not None
    await store.heartbeat(task.id, claimed.lease_token, lease_s=30, progress=0.5)
    await store.complete(task.id, claimed.lease_token, output={}, asset_media={"hls": "x"})

    shown = [s async for s in page._news(runtime, project, followed)]
    assert [(str(s.task_phase), str(s.asset.phase)) for s in shown] == [
        ("waiting", "waiting"),
        ("running", "processing"),
        ("completed", "ready"),
    ]
    assert shown[1].task_progress == 0.5
    assert followed.finished
    assert shown[-1].percent == 100


async def test_another_projects_asset_is_not_followed(
    store: taskstore.TaskStore, tmp_path: Path
) -> None:
    config = settings.Settings(data_dir=tmp_path)
    runtime = Runtime(settings=config, store=store, blobs=local.LocalBlobStore(tmp_path / "b"))
    mine = (await store.create_project("mine")).id
    theirs = (await store.create_project("theirs")).id
    asset, _ = await service.request_upload(
        store, config, project_id=theirs, name="theirs", options={}
    )
    followed = page._Followed(asset_id=asset.id, task_id=None, after_event=0)
    assert [s async for s in page._news(runtime, mine, followed)] == []
    assert followed.finished
