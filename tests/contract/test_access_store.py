"""The access-control part of the task store contract (signing keys, playback lookups), on
SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mediatasks import assets, errors, taskstore
from mediatasks.taskstore import accessstore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_signing_keys_are_kept_listed_updated_and_deleted(
    store: taskstore.TaskStore,
) -> None:
    project = (await store.create_project("p")).id
    first = await store.create_signing_key(project, name=None, public_key="pub-1", now=T0)
    assert first.name == "Signing Key 1" and first.public_key == "pub-1"
    assert first.disabled is False and first.last_seen_at is None
    assert first.created_at == T0 == first.updated_at
    later = T0 + timedelta(seconds=1)
    second = await store.create_signing_key(project, name="mine", public_key="pub-2", now=later)
    assert [key.id for key in await store.list_signing_keys(project)] == [second.id, first.id]
    assert await store.get_signing_key(first.id, project) == first

    renamed = await store.update_signing_key(first.id, project, name="renamed", now=later)
    assert (renamed.name, renamed.disabled, renamed.updated_at) == ("renamed", False, later)
    off = await store.update_signing_key(first.id, project, disabled=True)
    assert off.disabled is True and off.name == "renamed"
    listed = await store.list_signing_keys(project)
    assert [(key.id, key.disabled) for key in listed] == [(second.id, False), (first.id, True)]
    on = await store.update_signing_key(first.id, project, disabled=False)
    assert on.disabled is False
    assert not any(key.disabled for key in await store.list_signing_keys(project))

    await store.signing_key_seen(second.id, now=later)
    assert (await store.get_signing_key(second.id, project)).last_seen_at == later

    assert (await store.delete_signing_key(first.id, project)).id == first.id
    with pytest.raises(errors.NotFound):
        await store.get_signing_key(first.id, project)
    with pytest.raises(errors.NotFound):
        await store.delete_signing_key(first.id, project)
    assert [key.id for key in await store.list_signing_keys(project)] == [second.id]


async def test_signing_keys_are_scoped_to_their_project(store: taskstore.TaskStore) -> None:
    project = (await store.create_project("p")).id
    other = (await store.create_project("q")).id
    key = await store.create_signing_key(project, name="k", public_key="pub")
    for attempt in (
        store.get_signing_key(key.id, other),
        store.update_signing_key(key.id, other, disabled=True),
        store.delete_signing_key(key.id, other),
    ):
        with pytest.raises(errors.NotFound):
            await attempt
    assert await store.list_signing_keys(other) == []
    assert (await store.get_signing_key(key.id, project)).disabled is False


async def test_a_project_has_at_most_ten_signing_keys(store: taskstore.TaskStore) -> None:
    project = (await store.create_project("p")).id
    keys = [
        await store.create_signing_key(project, name=None, public_key=f"pub-{i}")
        for i in range(accessstore.MAX_SIGNING_KEYS)
    ]
    assert keys[-1].name == f"Signing Key {accessstore.MAX_SIGNING_KEYS}"
    with pytest.raises(errors.Conflict):
        await store.create_signing_key(project, name=None, public_key="one too many")
    other = (await store.create_project("q")).id
    assert (await store.create_signing_key(other, name=None, public_key="x")).name == (
        "Signing Key 1"
    )
    await store.delete_signing_key(keys[0].id, project)
    await store.create_signing_key(project, name=None, public_key="room again")


async def test_playback_asset_is_found_in_any_project_until_deleted(
    store: taskstore.TaskStore,
) -> None:
    project = (await store.create_project("p")).id
    asset, _ = await store.create_asset(
        taskstore.NewAsset(
            id="a1",
            project_id=project,
            name="a",
            playback_id="a1playbackid0000",
            phase=assets.AssetPhase.WAITING,
            source={"type": "url", "url": "https://example.com/v.mp4"},
            options={"playbackPolicy": {"type": "jwt"}},
        ),
        taskstore.NewTask(project_id=project, type="upload", params={}),
    )
    found = await store.playback_asset("a1playbackid0000")
    assert found.id == asset.id and found.options == {"playbackPolicy": {"type": "jwt"}}
    with pytest.raises(errors.NotFound):
        await store.playback_asset("nope")
    await store.delete_asset(asset.id, project)
    with pytest.raises(errors.NotFound):
        await store.playback_asset("a1playbackid0000")
