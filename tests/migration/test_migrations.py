"""Schema migrations upgrade an existing database in place, keeping its data."""

from __future__ import annotations

from mediatasks import assets, tasks, taskstore


async def test_upgrade_in_place_keeps_data(empty_store_url: str) -> None:
    store = taskstore.open_task_store(empty_store_url)
    try:
        # The schema as the first migration left it, with data written through the store.
        assert await store.migrate(target=1) == [1]
        project = await store.create_project("before the upgrade")
        _, secret = await store.create_api_key(project.id, "old key")
        task = await store.create_task(
            taskstore.NewTask(project_id=project.id, type="noop", params={"kept": True})
        )

        assert await store.migrate() == [2]
        assert await store.migrate() == []

        key = await store.authenticate(secret)
        assert key is not None and key.project_id == project.id
        kept = await store.get_task(task.id, project.id)
        assert kept.params == {"kept": True} and kept.phase is tasks.Phase.WAITING
        asset, _ = await store.create_asset(
            taskstore.NewAsset(
                id="a1",
                project_id=project.id,
                name="after the upgrade",
                playback_id=assets.new_playback_id("a1"),
                phase=assets.AssetPhase.WAITING,
                source={"type": "url", "url": "https://example.com/v.mp4"},
                options={},
            ),
            taskstore.NewTask(project_id=project.id, type="upload", params={}),
        )
        assert (await store.get_asset(asset.id)).name == "after the upgrade"
    finally:
        await store.close()
