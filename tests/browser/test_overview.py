"""The overview: tasks finished per minute (a chart), the queue now and the workers, live, and
only the signed-in project's."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import mediagen, processes
from tests.browser.conftest import SCREENSHOTS, Key, sign_in, watched_context

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}


def _wait_task(server: processes.Server, key: str, task_id: str, phases: set[str]) -> str:
    deadline = time.monotonic() + 90
    phase = ""
    while time.monotonic() < deadline:
        answer = httpx.get(
            f"{server.base_url}/api/task/{task_id}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        phase = answer.json()["status"]["phase"]
        if phase in phases:
            return phase
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} is still {phase}")


def _chart(page: Any) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(page.locator("#throughput-data").text_content())
    return found


@pytest.mark.timeout(300)  # a real import, watched through several live refreshes
def test_the_overview_shows_the_projects_work_live_and_no_other_projects(
    browser: Any,
    page: Any,
    server: processes.Server,
    new_key: Callable[..., Key],
    tmp_path: Path,
    screenshot: Callable[[Any, str], object],
    assert_accessible: Callable[[Any], object],
) -> None:
    mine, theirs = new_key(), new_key()
    sign_in(page, mine.secret)
    assert page.get_by_role("heading", name="Overview", exact=True).is_visible()
    # The embedded worker is seen, running nothing yet; nothing finished, nothing queued.
    worker = page.locator("li.worker").first
    worker.wait_for()
    assert "Running nothing of this project" in worker.inner_text()
    assert sum(_chart(page)["completed"]) == 0
    assert len(_chart(page)["t"]) == 60
    assert page.get_by_text("Nothing is queued").is_visible()
    page.wait_for_function("() => window.mediatasksThroughput !== undefined")
    assert page.locator("#throughput-chart canvas").count() >= 1

    video = mediagen.make_video(tmp_path / "v.mp4", seconds=2, width=320, height=180).read_bytes()
    chunk = max(1, len(video) // 25)
    with processes.trickle_server(video, chunk_bytes=chunk, pause_s=0.3) as url:
        created = httpx.post(
            f"{server.base_url}/api/asset/upload/url",
            headers={"Authorization": f"Bearer {mine.secret}"},
            json={"name": "overview", "url": url},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["task"]["id"]
        task_type = httpx.get(
            f"{server.base_url}/api/task/{task_id}",
            headers={"Authorization": f"Bearer {mine.secret}"},
        ).json()["type"]
        # Without a reload: the worker's row shows the task it runs, the queue its type.
        running = page.locator("li.running-task", has_text=task_id[:8])
        running.wait_for(timeout=30_000)
        assert task_type in running.inner_text()
        queue_row = page.locator("#queue-table tr", has_text=task_type)
        queue_row.wait_for(timeout=15_000)
        screenshot(page, "overview-running")
        assert assert_accessible(page) == []  # not even a minor violation

        # Another project's key, meanwhile, sees the worker but none of this work.
        with watched_context(browser, viewport={"width": 1280, "height": 800}) as other:
            stranger = other.new_page()
            stranger.set_default_timeout(15_000)
            stranger.goto(f"{server.base_url}/sign-in")
            stranger.get_by_label("API key").fill(theirs.secret)
            stranger.get_by_role("button", name="Sign in").click()
            stranger.locator("li.worker").first.wait_for()
            assert stranger.locator("li.running-task").count() == 0
            assert task_id[:8] not in stranger.content()
            assert stranger.get_by_text("Nothing is queued").is_visible()
            fragment = stranger.evaluate("async () => await (await fetch('/overview/live')).text()")
            assert task_id[:8] not in fragment and "Nothing is queued" in fragment

        assert _wait_task(server, mine.secret, task_id, {"completed", "failed"}) == "completed"

    # The completion reaches the chart's numbers and the counts without a reload.
    page.wait_for_function(
        "() => document.getElementById('completed-hour').textContent.trim() === '1'",
        timeout=20_000,
    )
    data = _chart(page)
    assert sum(data["completed"]) == 1 and sum(data["failed"]) == 0
    assert data["completed"][-1] == 1  # this minute is the last bar
    drawn = page.evaluate("() => window.mediatasksThroughput.data[1].reduce((a, b) => a + b, 0)")
    assert drawn == 1
    page.locator("details summary").click()
    assert page.locator("#throughput-table tbody tr").count() == 1
    # The next live refresh keeps the numbers open.
    stamp = page.locator("#overview-updated").get_attribute("datetime")
    page.wait_for_function(
        "(before) => document.getElementById('overview-updated').getAttribute('datetime')"
        " !== before",
        arg=stamp,
        timeout=20_000,
    )
    assert page.locator("#throughput-numbers").get_attribute("open") is not None
    assert page.locator("#throughput-table tbody tr").is_visible()
    page.wait_for_function(
        "() => document.querySelectorAll('li.running-task').length === 0", timeout=20_000
    )
    screenshot(page, "overview")
    assert assert_accessible(page) == []  # not even a minor violation

    # The other project's numbers stay at zero.
    page.context.clear_cookies()
    sign_in(page, theirs.secret)
    assert sum(_chart(page)["completed"]) == 0
    assert page.locator("#completed-hour").inner_text() == "0"


def test_the_chart_says_minutes_in_24_hour_utc_like_the_tables(
    browser: Any, server: processes.Server
) -> None:
    # In Kathmandu (UTC+5:45), so that the browser's own time zone would show, in the labels
    # and in where the ticks fall (at this width they are 10 minutes apart: on local ones, they
    # would be on UTC's :05, :15...).
    options = {
        "viewport": {"width": 560, "height": 800},
        "base_url": server.base_url,
        "timezone_id": "Asia/Kathmandu",
    }
    with watched_context(browser, **options) as context:
        page = context.new_page()
        page.set_default_timeout(15_000)
        sign_in(page, server.key)
        page.wait_for_function("() => window.mediatasksThroughput !== undefined")
        # uPlot draws the axis on a canvas; its axis keeps the ticks and their labels.
        ticks = page.evaluate(
            "() => { const axis = window.mediatasksThroughput.axes[0];"
            " return [axis._splits, axis._values]; }"
        )
        splits, labels = ticks
        assert len(labels) >= 3, labels
        step = splits[1] - splits[0]
        assert step % 300 == 0 and all(t % step == 0 for t in splits), labels
        assert labels == [datetime.fromtimestamp(t, UTC).strftime("%H:%M") for t in splits]
        # The legend's reading under the cursor: the last minute, as the table writes it.
        last = _chart(page)["t"][-1]
        page.evaluate(
            "(t) => { const u = window.mediatasksThroughput;"
            " u.setCursor({left: u.valToPos(t, 'x'), top: 10}); }",
            last,
        )
        reading = page.locator(".u-legend .u-series").first
        assert reading.locator(".u-label").inner_text() == "Minute (UTC)"
        assert reading.locator(".u-value").inner_text() == (
            datetime.fromtimestamp(last, UTC).strftime("%H:%M")
        )


def test_the_overview_fits_a_phone(
    signed_in: Any, assert_accessible: Callable[[Any], object]
) -> None:
    signed_in.set_viewport_size(PHONE)
    signed_in.goto("/")
    signed_in.locator("li.worker").first.wait_for()
    overflow = signed_in.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page is {overflow} px wider than a phone"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    signed_in.screenshot(path=str(SCREENSHOTS / "overview-phone.png"), full_page=True)
    assert assert_accessible(signed_in) == []  # not even a minor violation

    signed_in.get_by_role("button", name="Sign out").click()
    signed_in.wait_for_url(re.compile(r"/sign-in"))
    overflow = signed_in.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the sign-in page is {overflow} px wider than a phone"
    signed_in.screenshot(path=str(SCREENSHOTS / "sign-in-phone.png"), full_page=True)


def test_keyboard_focus_is_visible(signed_in: Any) -> None:
    signed_in.keyboard.press("Tab")
    focused = signed_in.evaluate(
        """() => {
            const el = document.activeElement;
            const style = getComputedStyle(el);
            return {text: el.textContent.trim(), outline: style.outlineStyle,
                    width: parseFloat(style.outlineWidth)};
        }"""
    )
    assert focused["text"] == "Skip to content"
    assert focused["outline"] != "none" and focused["width"] >= 2
    signed_in.keyboard.press("Tab")
    assert signed_in.evaluate("() => document.activeElement.textContent.trim()") == "mediatasks"
