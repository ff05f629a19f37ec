"""Two worker processes on PostgreSQL drain 2,000 tasks: each runs exactly once, none is lost."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from mediatasks import tasks, taskstore
from tests import processes

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

COUNT = 2000


async def _fill(url: str) -> None:
    store = taskstore.open_task_store(url)
    try:
        project = await store.create_project("load")
        await asyncio.gather(
            *(
                store.create_task(taskstore.NewTask(project_id=project.id, type="noop", params={}))
                for _ in range(COUNT)
            )
        )
    finally:
        await store.close()


async def _tally(url: str) -> tuple[dict[str, int], list[tasks.Task]]:
    store = taskstore.open_task_store(url)
    try:
        counts = {str(phase): await store.count_tasks(phase) for phase in tasks.Phase}
        project = (await store.list_projects())[0]
        found: list[tasks.Task] = []
        while len(found) < COUNT:
            page = await store.list_tasks(
                taskstore.Query(project_id=project.id, limit=1000, offset=len(found))
            )
            if not page.items:
                break
            found.extend(page.items)
        return counts, found
    finally:
        await store.close()


def test_two_workers_drain_2000_tasks(pg_url: str, tmp_path: Path) -> None:
    asyncio.run(_fill(pg_url))
    env = {
        "MEDIATASKS_DATABASE_URL": pg_url,
        "MEDIATASKS_DATA_DIR": str(tmp_path / "data"),
        "MEDIATASKS_CONCURRENCY": "20",
    }
    workers = [processes.start(["worker"], env, tmp_path / f"worker{i}.log") for i in range(2)]
    started = time.monotonic()
    try:
        while time.monotonic() - started < 120:
            counts, _ = asyncio.run(_tally(pg_url))
            if counts["completed"] == COUNT:
                break
            time.sleep(0.5)
        print(f"\n{COUNT} no-op tasks, 2 worker processes: {time.monotonic() - started:.1f} s")
    finally:
        for worker in workers:
            worker.stop()
    counts, found = asyncio.run(_tally(pg_url))
    assert counts["completed"] == COUNT, counts
    assert len({t.id for t in found}) == COUNT
    assert all(t.attempt == 1 and t.retries == 0 for t in found)
    by_worker = {t.output["noop"]["attempt"] for t in found if t.output}
    assert by_worker == {1}
    for worker in workers:
        assert "stopped" in worker.log()
