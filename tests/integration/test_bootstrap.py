"""The key that ``serve`` prints: one file per task store, so that trying a second store in the
same folder never overwrites the first one's key."""

from __future__ import annotations

from pathlib import Path

from mediatasks import service, settings, taskstore


def test_each_task_store_has_its_own_key_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    embedded = settings.Settings(data_dir=data)
    other = settings.Settings(data_dir=data, database_url=f"sqlite:///{tmp_path / 'other.db'}")
    pg = settings.Settings(data_dir=data, database_url="postgresql://ops:hunter2@db:5432/media")
    paths = {service.bootstrap_key_path(s) for s in (embedded, other, pg)}
    assert service.bootstrap_key_path(embedded) == data / "bootstrap-api-key"
    assert len(paths) == 3 and all(p.parent == data for p in paths)
    assert "hunter2" not in str(service.bootstrap_key_path(pg))
    same_without_password = settings.Settings(
        data_dir=data, database_url="postgresql://ops:changed@db:5432/media"
    )
    assert service.bootstrap_key_path(same_without_password) == service.bootstrap_key_path(pg)


async def test_a_second_store_in_the_same_folder_keeps_the_first_ones_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    embedded = settings.Settings(data_dir=data)
    other = settings.Settings(data_dir=data, database_url=f"sqlite:///{tmp_path / 'other.db'}")
    keys = {}
    for config in (embedded, other, embedded):
        store = taskstore.open_task_store(config.resolved_database_url)
        try:
            await store.migrate()
            boot = await service.bootstrap_key(store, service.bootstrap_key_path(config))
            assert boot is not None
            assert await store.authenticate(boot.secret) is not None
            keys.setdefault(config.resolved_database_url, set()).add(boot.secret)
        finally:
            await store.close()
    assert [len(found) for found in keys.values()] == [1, 1]  # printed again, not replaced
    assert (data / "bootstrap-api-key").stat().st_mode & 0o77 == 0
