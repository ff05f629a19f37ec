"""The tasks pages in a real browser against a real ``mediatasks serve``: progress that moves
without a reload, cancel and retry from a task's page, filters, bulk cancel, a task's webhook
deliveries, and another project's task answered 404."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import mediagen, processes, receiver
from tests.browser.conftest import SCREENSHOTS, Key, sign_in

pytestmark = pytest.mark.slow

DEADLINE_S = 120.0


def _api(server: processes.Server) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.base_url}/api",
        headers={"Authorization": f"Bearer {server.key}"},
        timeout=30,
    )


def _import(api: httpx.Client, url: str, name: str) -> tuple[str, str]:
    """Import ``url`` as a new asset; its task id and asset id."""
    answer = api.post("/asset/upload/url", json={"name": name, "url": url})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return body["task"]["id"], body["asset"]["id"]


def _phase(api: httpx.Client, task_id: str) -> str:
    answer = api.get(f"/task/{task_id}")
    assert answer.status_code == 200, answer.text
    phase: str = answer.json()["status"]["phase"]
    return phase


def _wait(what: str, check: Callable[[], bool], timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A file server of generated videos: ``long.mp4`` takes a while to transcode, ``short.mp4``
    little."""
    root = tmp_path_factory.mktemp("media")
    mediagen.make_video(root / "long.mp4", seconds=30, width=960, height=540)
    mediagen.make_video(root / "short.mp4", seconds=2)
    with processes.file_server(root) as base:
        yield base


def _accessible(check: Callable[[Any], Any], page: Any) -> None:
    """No accessibility violation at all (axe-core), not only no critical one."""
    violations = check(page)
    assert not violations, [(v["id"], v["impact"], v["help"]) for v in violations]


def _status_of(page: Any, task_id: str) -> Any:
    return page.locator(f'[data-task-status="{task_id}"]').first


def _progress_value(page: Any, task_id: str) -> int | None:
    bar = _status_of(page, task_id).locator("progress")
    if bar.count() == 0:
        return None
    value = bar.first.get_attribute("value")
    return int(value) if value is not None else None


@pytest.mark.timeout(360)  # it transcodes a long video twice (the first time in part)
def test_progress_moves_live_then_cancel_and_retry_from_the_task_page(
    signed_in: Any,
    server: processes.Server,
    media: str,
    screenshot: Callable[[Any, str], Path],
    assert_accessible: Callable[[Any], object],
) -> None:
    page = signed_in
    api = _api(server)
    page.goto("/tasks")
    page.evaluate("window.__notReloaded = true")
    task_id, asset_id = _import(api, f"{media}/long.mp4?for=live", "long video")

    # The new task is not on the page yet: the live counts say so.
    notice = page.locator("[data-created-notice]")
    notice.wait_for(state="visible", timeout=30_000)
    assert "new task" in notice.inner_text()
    page.get_by_role("link", name="Show them").click()
    row_status = _status_of(page, task_id)
    row_status.wait_for()
    page.evaluate("window.__notReloaded = true")

    # Its progress moves without a reload: running, then two different values.
    row_status.locator(".phase-running").wait_for(timeout=60_000)
    seen: set[int] = set()

    def moved() -> bool:
        value = _progress_value(page, task_id)
        if value is not None:
            seen.add(value)
        return len(seen) >= 3

    _wait("the progress bar to move", moved)
    assert page.evaluate("window.__notReloaded") is True
    assert page.locator('[data-count="running"]').inner_text() != "0"
    assert row_status.locator(".eta, .progress").count() >= 1
    screenshot(page, "tasks-list")
    _accessible(assert_accessible, page)

    # Cancel it from its page while it runs.
    page.get_by_role("link", name=task_id[:8]).click()
    page.wait_for_url(f"**/tasks/{task_id}")
    assert page.get_by_role("heading", name=re.compile("Task")).first.is_visible()
    page.locator(f'[data-task-status="{task_id}"] .phase-running').wait_for()
    assert page.get_by_role("link", name=asset_id).is_visible()
    page.get_by_role("button", name="Cancel task").click()
    page.get_by_role("status").filter(has_text="The task was cancelled.").wait_for()
    page.locator(f'[data-task-status="{task_id}"] .phase-cancelled').wait_for()
    assert _phase(api, task_id) == "cancelled"
    assert page.locator(".attempt").first.locator(".outcome").inner_text() == "cancelled"
    assert page.get_by_role("button", name="Cancel task").count() == 0

    # Retry it: it runs again, as a second attempt, and the page follows without a reload.
    page.get_by_role("button", name="Retry task").click()
    page.wait_for_url(f"**/tasks/{task_id}?done=retry")  # its notice goes once the task moves
    page.evaluate("window.__notReloaded = true")
    page.locator(f'[data-task-status="{task_id}"] .phase-running').wait_for(timeout=60_000)
    page.get_by_role("article", name="Attempt 2").wait_for()
    assert page.evaluate("window.__notReloaded") is True
    _wait("the retried task to make progress", lambda: (_progress_value(page, task_id) or 0) > 0)
    assert page.get_by_role("button", name="Cancel task").is_visible()
    params = page.get_by_label("Params as JSON").inner_text()
    assert "long.mp4" in params
    screenshot(page, "task-page-running")
    _accessible(assert_accessible, page)

    # Let it finish: the timeline then holds both attempts and the output is shown.
    page.locator(f'[data-task-status="{task_id}"] .phase-completed').wait_for(timeout=240_000)
    page.locator(".attempt.outcome-completed").wait_for()  # the panel follows the status
    outcomes = page.locator(".attempt .outcome").all_inner_texts()
    assert outcomes == ["cancelled", "completed"]
    assert page.get_by_label("Output as JSON").is_visible()
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "task-page-completed")
    _accessible(assert_accessible, page)


def test_filters_and_bulk_cancel(
    signed_in: Any,
    server: processes.Server,
    media: str,
    screenshot: Callable[[Any, str], Path],
    assert_accessible: Callable[[Any], object],
) -> None:
    page = signed_in
    api = _api(server)
    # Three imports that download slowly: they stay running or waiting while the test acts.
    video = httpx.get(f"{media}/short.mp4").content
    with processes.trickle_server(video, chunk_bytes=256, pause_s=0.5) as slow:
        made = [_import(api, f"{slow}?n={i}", f"slow {i}") for i in range(3)]
        ids = [task_id for task_id, _ in made]
        page.goto("/tasks")
        for task_id in ids:
            page.get_by_label(f"Select task {task_id}").check()
        assert page.locator("[data-selected-count]").inner_text() == "3 tasks selected."
        page.get_by_role("button", name="Cancel selected").click()
        page.get_by_role("status").filter(has_text="Cancelled 3 tasks.").wait_for()
        for task_id in ids:
            _status_of(page, task_id).locator(".phase-cancelled").wait_for()
            assert _phase(api, task_id) == "cancelled"

    # By phase: the sidebar's link and the form agree.
    page.get_by_role("complementary").get_by_role("link", name=re.compile("cancelled")).click()
    page.wait_for_url(re.compile(r"phase=cancelled"))
    assert page.get_by_label("Phase", exact=True).input_value() == "cancelled"
    phases = page.locator("tbody [data-task-status] .badge").all_inner_texts()
    assert phases and set(phases) == {"cancelled"}
    for task_id in ids:
        assert _status_of(page, task_id).count() == 1

    # By asset id: only the task that fills it.
    page.goto("/tasks")
    page.get_by_label("Task or asset id").fill(made[1][1])
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"id="))
    assert page.locator("tbody tr").count() == 1
    assert _status_of(page, ids[1]).count() == 1
    screenshot(page, "tasks-filtered")
    _accessible(assert_accessible, page)
    # At phone width the sidebar goes above the list, and nothing is wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide at phone width"
    page.screenshot(path=str(SCREENSHOTS / "tasks-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    # By type, and by creation time (an hour that ended before them shows none of them).
    page.goto("/tasks?type=audio-export")
    assert all(_status_of(page, task_id).count() == 0 for task_id in ids)
    assert page.get_by_label("Type", exact=True).input_value() == "audio-export"
    page.goto("/tasks?type=upload&created_to=2000-01-01T00:00")
    assert page.get_by_text("No task matches these filters.").is_visible()
    page.goto("/tasks?type=upload&created_from=2000-01-01T00:00")
    for task_id in ids:
        assert _status_of(page, task_id).count() == 1

    # Retry them together; then cancel them again so that they do not hold the workers.
    page.goto("/tasks?phase=cancelled")
    for task_id in ids:
        page.get_by_label(f"Select task {task_id}").check()
    page.get_by_role("button", name="Retry selected").click()
    page.get_by_role("status").filter(has_text=re.compile(r"Retried [1-9]")).wait_for()
    for task_id in ids:
        api.post(f"/task/{task_id}/cancel")

    # A bad filter is a page saying what is wrong.
    answer = page.goto("/tasks?created_from=yesterday")
    assert answer is not None and answer.status == 400
    assert page.get_by_text("is not a date and time").is_visible()


def test_a_task_page_shows_the_webhook_deliveries_of_its_events(
    signed_in: Any,
    server: processes.Server,
    media: str,
    screenshot: Callable[[Any, str], Path],
    assert_accessible: Callable[[Any], object],
) -> None:
    page = signed_in
    api = _api(server)
    with receiver.receiving("browser-secret") as received:
        hook = api.post(
            "/webhook",
            json={
                "name": "test receiver",
                "url": received.url,
                "events": ["task.spawned", "task.updated", "task.completed"],
                "sharedSecret": "browser-secret",
            },
        )
        assert hook.status_code in (200, 201), hook.text
        hook_id = hook.json()["id"]
        try:
            task_id, _ = _import(api, f"{media}/short.mp4?for=webhooks", "short video")
            _wait("the import to complete", lambda: _phase(api, task_id) == "completed")
            _wait(
                "the receiver to get task.completed",
                lambda: "task.completed" in received.names(task_id),
            )
            page.goto(f"/tasks/{task_id}")
            output = page.get_by_label("Output as JSON").inner_text()
            assert '"assetSpec"' in output and '"playbackId"' in output  # as /api shows it
            section = page.locator("#task-deliveries")
            completed_row = section.locator("tr", has_text="task.completed")
            completed_row.wait_for()
            # The section refreshes itself while deliveries are pending: wait for delivered.
            completed_row.locator(".delivery-delivered").wait_for(timeout=30_000)
            assert "HTTP 200" in completed_row.inner_text()
            assert "test receiver" in completed_row.inner_text()
            events = section.locator("tbody tr td:first-child").all_inner_texts()
            assert {"task.spawned", "task.updated", "task.completed"} <= set(events)
            assert received.url.split("//", 1)[1].split("/", 1)[0] in section.inner_text()
            section.scroll_into_view_if_needed()
            screenshot(page, "task-page-deliveries")
            _accessible(assert_accessible, page)
        finally:
            api.delete(f"/webhook/{hook_id}")


def test_another_projects_task_is_not_found(
    page: Any,
    server: processes.Server,
    media: str,
    new_key: Callable[..., Key],
    screenshot: Callable[[Any, str], Path],
    assert_accessible: Callable[[Any], object],
) -> None:
    api = _api(server)
    task_id, _ = _import(api, f"{media}/short.mp4?for=projects", "first project's video")
    other = new_key(new_project=True)
    sign_in(page, other.secret)

    answer = page.goto(f"/tasks/{task_id}")
    assert answer is not None and answer.status == 404
    assert page.get_by_text("There is no task with this id in this project.").is_visible()
    screenshot(page, "task-page-not-found")
    _accessible(assert_accessible, page)
    page.goto("/tasks")
    assert _status_of(page, task_id).count() == 0
    assert page.locator('[data-count="all"]').inner_text() == "0"
    page.goto(f"/tasks?id={task_id}")
    assert page.get_by_text("No task matches these filters.").is_visible()
    # Its actions are refused too, with the same answer (and the task does not move).
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
    refused = page.request.post(f"/tasks/{task_id}/cancel", form={"csrf": csrf or ""})
    assert refused.status == 404
    bulk = page.request.post(
        "/tasks/bulk", form={"csrf": csrf or "", "action": "cancel", "ids": task_id}
    )
    assert bulk.ok and "skipped=1" in bulk.url
    assert _phase(api, task_id) != "cancelled"
