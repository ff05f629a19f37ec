"""Schema migrations upgrade an existing database in place, keeping its data.

The old database is made as a first release would have left it: the first migration only, and
rows written with plain SQL in that schema's shape.
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

import psycopg

from mediatasks import assets, tasks, taskstore
from mediatasks.taskstore import queries

T0_MS = 1_767_225_600_000
SECRET = "mt_old-release-key"

OLD_ROWS: list[tuple[str, tuple[Any, ...]]] = [
    ("INSERT INTO projects (id, name, created_at) VALUES (?, ?, ?)", ("p1", "old", T0_MS)),
    (
        "INSERT INTO api_keys (id, project_id, name, secret_hash, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        ("k1", "p1", "old key", hashlib.sha256(SECRET.encode()).hexdigest(), T0_MS),
    ),
    (
        "INSERT INTO tasks (id, project_id, type, phase, params, max_retries, created_at, "
        "updated_at, scheduled_at, run_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("t1", "p1", "noop", "waiting", '{"kept": true}', 2, T0_MS, T0_MS, T0_MS, T0_MS),
    ),
]


def _write_old_rows(url: str) -> None:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            for sql, params in OLD_ROWS:
                conn.execute(sql, params)
        return
    with psycopg.connect(url) as conn:
        for sql, params in OLD_ROWS:
            conn.execute(sql.replace("?", "%s").encode(), params)


async def test_upgrade_in_place_keeps_data(empty_store_url: str) -> None:
    store = taskstore.open_task_store(empty_store_url)
    try:
        assert await store.migrate(target=1) == [1]
    finally:
        await store.close()
    _write_old_rows(empty_store_url)

    store = taskstore.open_task_store(empty_store_url)
    try:
        dialect = "sqlite" if empty_store_url.startswith("sqlite") else "postgres"
        later = [version for version, _ in queries.load_migrations(dialect) if version > 1]
        assert await store.migrate() == later
        assert await store.migrate() == []

        key = await store.authenticate(SECRET)
        assert key is not None and key.project_id == "p1"
        kept = await store.get_task("t1", "p1")
        assert kept.params == {"kept": True} and kept.phase is tasks.Phase.WAITING
        assert await store.queue_depth() == {("noop", tasks.Phase.WAITING): 1}
        [claimed] = await store.claim("w", types=["noop"], limit=1, lease_s=30)
        assert claimed.id == "t1" and claimed.attempt == 1
        asset, _ = await store.create_asset(
            taskstore.NewAsset(
                id="a1",
                project_id="p1",
                name="after the upgrade",
                playback_id=assets.new_playback_id("a1"),
                phase=assets.AssetPhase.WAITING,
                source={"type": "url", "url": "https://example.com/v.mp4"},
                options={},
            ),
            taskstore.NewTask(project_id="p1", type="upload", params={}),
        )
        assert (await store.get_asset(asset.id)).name == "after the upgrade"
        signing = await store.create_signing_key("p1", name=None, public_key="pub")
        assert [k.id for k in await store.list_signing_keys("p1")] == [signing.id]
    finally:
        await store.close()
