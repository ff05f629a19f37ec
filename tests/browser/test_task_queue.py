"""A waiting task's page in a real browser: its queue position goes down, without a reload, as a
worker takes the tasks ahead of it, then the page shows it running and completed.

The service runs without its embedded worker (``serve --no-worker``), so the tasks stay waiting
until the test starts a worker of its own, with a concurrency of 1: the tasks ahead of the
watched one are then taken one at a time.  They are ``noop`` tasks (no API creates them) that
sleep a little, written into the service's SQLite store directly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mediatasks import settings, taskstore
from tests import processes
from tests.browser.conftest import VIEWPORT, sign_in, watched_context

pytestmark = pytest.mark.slow

_T = TypeVar("_T")

#: Tasks created before the watched one: it starts number ``AHEAD + 1`` in the queue.
AHEAD = 3
#: How long each task ahead runs: long enough for the page to show each position for a while
#: (the live stream reads a waiting task's position again every 2 s), short for the suite.
SLEEP_S = 2.0

#: Records every text the watched task's status cell shows, in order, across the swaps of the
#: live stream and of the panel (which replaces the cell when the phase changes).
_RECORD_STATUS = """
(id) => {
  window.__statuses = [];
  const record = () => {
    const cell = document.querySelector(`[data-task-status="${CSS.escape(id)}"]`);
    const text = cell ? cell.innerText.replace(/\\s+/g, " ").trim() : "";
    const seen = window.__statuses;
    if (text && seen[seen.length - 1] !== text) seen.push(text);
  };
  record();
  new MutationObserver(record).observe(document.getElementById("task-panel"),
    {subtree: true, childList: true, characterData: true});
}
"""


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to its end in a thread of its own: Playwright's synchronous API keeps an event
    loop running in this one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _add_waiting(server: processes.Server, count: int) -> str:
    """``count`` sleeping ``noop`` tasks in the bootstrap key's project; the id of the one last in
    the queue (tasks created in the same millisecond are queued in the order of their ids)."""
    config = settings.Settings(data_dir=server.data_dir)
    store = taskstore.open_task_store(config.resolved_database_url)
    try:
        [project] = await store.list_projects()
        made = []
        for _ in range(count):
            new = taskstore.NewTask(project_id=project.id, type="noop", params={"sleep_s": SLEEP_S})
            made.append(await store.create_task(new))
        positions = {await store.queue_position(task): task.id for task in made}
        assert sorted(positions) == list(range(1, count + 1)), positions
        return positions[count]
    finally:
        await store.close()


@pytest.fixture
def queue_server(tmp_path: Path) -> Iterator[processes.Server]:
    """A ``mediatasks serve`` of its own, without a worker: nothing it queues runs by itself."""
    with processes.serve(tmp_path, "--no-worker") as running:
        yield running


def _statuses(page: Any) -> list[str]:
    seen: list[str] = page.evaluate("() => window.__statuses")
    return seen


def _wait(page: Any, what: str, predicate: Any, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate(_statuses(page)):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; seen: {_statuses(page)}")
        time.sleep(0.1)


def _position(text: str) -> int | None:
    """The queue position a status cell's text tells (``waiting number 3 in the queue``)."""
    if not text.startswith("waiting"):
        return None
    if "next to run" in text:
        return 1
    words = text.split()
    return int(words[words.index("number") + 1]) if "number" in words else None


@pytest.mark.timeout(120)
def test_a_waiting_tasks_page_counts_down_its_queue_position_then_shows_it_run(
    browser: Any, queue_server: processes.Server, tmp_path: Path
) -> None:
    server = queue_server
    watched = _run(_add_waiting(server, AHEAD + 1))
    with watched_context(browser, viewport=VIEWPORT, base_url=server.base_url) as context:
        context.set_default_timeout(15_000)
        page = context.new_page()
        sign_in(page, server.key)
        page.goto(f"/tasks/{watched}")
        cell = page.locator(f'[data-task-status="{watched}"]')
        assert " ".join(cell.inner_text().split()) == f"waiting number {AHEAD + 1} in the queue"
        page.evaluate("window.__notReloaded = true")
        page.evaluate(_RECORD_STATUS, watched)

        env = {**server.env, "MEDIATASKS_CONCURRENCY": "1"}
        worker = processes.start(["worker"], env, tmp_path / "worker.log")
        try:
            _wait(
                page, "its completion", lambda seen: bool(seen) and seen[-1].startswith("completed")
            )
        finally:
            worker.stop()

        seen = _statuses(page)
        positions = [p for p in map(_position, seen) if p is not None]
        # The position went down as the tasks ahead were taken, one step or more at a time
        # (each shown for a while), and never up; then the task ran and completed.
        assert positions[0] == AHEAD + 1, seen
        assert len(positions) >= 3, seen
        assert positions == sorted(positions, reverse=True), seen
        assert len(set(positions)) == len(positions), seen
        phases = [text.split()[0] for text in seen]
        assert phases[: len(positions)] == ["waiting"] * len(positions), seen
        assert set(phases[len(positions) : -1]) == {"running"}, seen
        assert phases[-1] == "completed", seen
        assert page.evaluate("window.__notReloaded") is True
        page.get_by_role("article", name="Attempt 1").wait_for()
        assert page.locator(".attempt .outcome").all_inner_texts() == ["completed"]
        assert page.get_by_role("button", name="Cancel task").count() == 0
