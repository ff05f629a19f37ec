"""The tasks pages over a real store, in this process: stable pages while tasks are created,
every type shown (Flat's audio exports too), bulk actions and their refusals, bad input as a
page, and another project's tasks unseen."""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mediatasks import settings, tasks, taskstore
from tests import inprocess, mediagen, processes, scoregen


@pytest.fixture
async def service(store: taskstore.TaskStore, tmp_path: Path) -> AsyncIterator[inprocess.Service]:
    config = settings.Settings(data_dir=tmp_path)
    async with inprocess.running(store, config, worker=False) as running:
        yield running


@contextlib.asynccontextmanager
async def _signed_in(
    service: inprocess.Service, secret: str
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A browser-like client signed in with ``secret`` (cookies kept), and its CSRF token."""
    async with httpx.AsyncClient(
        transport=service.viewer._transport, base_url="http://testserver"
    ) as browser:
        yield browser, await _sign_in(browser, secret)


async def _sign_in(browser: httpx.AsyncClient, secret: str) -> str:
    form = await browser.get("/sign-in")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token, form.text
    signed = await browser.post("/sign-in", data={"api_key": secret, "csrf": token[1], "next": "/"})
    assert signed.status_code == 303, signed.text
    page = await browser.get("/tasks")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    return csrf[1]


def _ids_on(html: str) -> list[str]:
    return re.findall(r'<tr data-task-row="([^"]+)"', html)


async def _add(service: inprocess.Service, project: str, type: str = "noop") -> tasks.Task:
    new = taskstore.NewTask(project_id=project, type=type, params={"score": "s", "format": "mp3"})
    return await service.runtime.store.create_task(new)


async def test_pages_are_stable_while_tasks_are_created(service: inprocess.Service) -> None:
    async with _signed_in(service, service.secret) as (browser, _):
        existing = {(await _add(service, service.project_id)).id for _ in range(30)}
        first = await browser.get("/tasks")
        on_first = _ids_on(first.text)
        assert len(on_first) == 25
        older = re.search(r'href="([^"]+)" rel="next">Older tasks', first.text)
        assert older
        created = {(await _add(service, service.project_id)).id for _ in range(3)}
        second = await browser.get(older[1].replace("&amp;", "&"))
        assert second.status_code == 200
        on_second = _ids_on(second.text)
        assert len(on_second) == 5 and 'rel="next"' not in second.text
        assert set(on_first) | set(on_second) == existing  # none twice, none missed
        assert not set(on_second) & created
        assert "Newest tasks" in second.text
        odd = await browser.get("/tasks?limit=" + "9" * 5000)  # the default page, not a 500
        assert odd.status_code == 200 and len(_ids_on(odd.text)) == 25
        bigger = await browser.get("/tasks?limit=100")
        assert set(_ids_on(bigger.text)) == existing | created


async def test_flat_audio_exports_are_listed_with_the_others(service: inprocess.Service) -> None:
    flat = "http://testserver/v2"
    score = await service.client.post(
        f"{flat}/scores", json={"data": scoregen.musicxml(), "filename": "s.musicxml"}
    )
    assert score.status_code == 200, score.text
    export = await service.client.post(
        f"{flat}/scores/{score.json()['id']}/revisions/last/mp3/task"
    )
    assert export.status_code == 200, export.text
    audio_id = export.json()["id"]
    upload = await _add(service, service.project_id, "upload")
    async with _signed_in(service, service.secret) as (browser, _):
        page = await browser.get("/tasks")
        assert {audio_id, upload.id} <= set(_ids_on(page.text))
        only_audio = await browser.get("/tasks?type=audio-export")
        assert _ids_on(only_audio.text) == [audio_id]
        detail = await browser.get(f"/tasks/{audio_id}")
        assert detail.status_code == 200 and "audio-export" in detail.text
        assert "&#34;format&#34;: &#34;mp3&#34;" in detail.text  # the params, as pretty JSON


async def test_bulk_actions_and_their_refusals(service: inprocess.Service) -> None:
    store = service.runtime.store
    other = await store.create_project("other")
    _, other_secret = await store.create_api_key(other.id, "k")
    async with _signed_in(service, service.secret) as (browser, csrf):
        mine = [await _add(service, service.project_id) for _ in range(2)]
        theirs = await _add(service, other.id)
        ids = [task.id for task in mine] + [theirs.id]

        forged = await browser.post("/tasks/bulk", data={"action": "cancel", "ids": ids})
        assert forged.status_code == 403
        assert (await store.get_task(mine[0].id)).phase is tasks.Phase.WAITING

        done = await browser.post(
            "/tasks/bulk",
            data={"csrf": csrf, "action": "cancel", "ids": ids, "back": "/tasks?phase=waiting"},
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/tasks?phase=waiting&bulk=cancel&done=2&skipped=1"
        for task in mine:
            assert (await store.get_task(task.id)).phase is tasks.Phase.CANCELLED
        assert (await store.get_task(theirs.id)).phase is tasks.Phase.WAITING
        told = await browser.get(done.headers["location"])
        assert "Cancelled 2 tasks. 1 could not be cancelled" in told.text

        away = await browser.post(
            "/tasks/bulk",
            data={"csrf": csrf, "action": "retry", "ids": ids, "back": "https://127.0.0.2/x"},
        )
        assert away.headers["location"] == "/tasks?bulk=retry&done=2&skipped=1"
        for task in mine:
            assert (await store.get_task(task.id)).phase is tasks.Phase.WAITING

        for bad in ({"action": "delete", "ids": ids}, {"action": "cancel"}):
            refused = await browser.post("/tasks/bulk", data={"csrf": csrf, **bad})
            assert refused.status_code == 400 and "<h1>" in refused.text

        # Another project's task: not found, and not moved.
        assert (await browser.get(f"/tasks/{theirs.id}")).status_code == 404
        assert (await browser.get(f"/tasks/{theirs.id}/panel")).status_code == 404
        cancel = await browser.post(f"/tasks/{theirs.id}/cancel", data={"csrf": csrf})
        assert cancel.status_code == 404
        assert (await store.get_task(theirs.id)).phase is tasks.Phase.WAITING

        # A waiting task is not retried: a page that says so.
        waiting = await browser.post(f"/tasks/{mine[0].id}/retry", data={"csrf": csrf})
        assert waiting.status_code == 409 and "Task is not in a retryable state." in waiting.text

    async with _signed_in(service, other_secret) as (their_browser, _):
        theirs_page = await their_browser.get("/tasks")
        assert _ids_on(theirs_page.text) == [theirs.id]


@pytest.mark.parametrize(
    "query",
    [
        "type=nothing",
        "phase=done",
        "created_from=yesterday",
        "created_to=99999-01-01T00:00",
        "cursor=not-a-cursor",
        "id=" + "x" * 300,
    ],
)
async def test_bad_filters_are_a_page_saying_so(service: inprocess.Service, query: str) -> None:
    async with _signed_in(service, service.secret) as (browser, _):
        answer = await browser.get(f"/tasks?{query}")
        assert answer.status_code == 400
        assert "text/html" in answer.headers["content-type"]
        assert "<h1>Bad request</h1>" in answer.text


async def test_signed_out_people_are_sent_to_sign_in(service: inprocess.Service) -> None:
    task = await _add(service, service.project_id)
    for path in ("/tasks", f"/tasks/{task.id}", "/tasks/live?ids=" + task.id):
        answer = await service.viewer.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/sign-in?next=")


async def test_a_failed_import_shows_its_error_and_runs_again_when_retried(
    store: taskstore.TaskStore, tmp_path: Path
) -> None:
    root = tmp_path / "files"
    root.mkdir()
    mediagen.make_text_file(root / "text.mp4")
    config = settings.Settings(
        data_dir=tmp_path / "data",
        allow_private_urls=True,
        retry_backoff_s=[0.05],
        poll_interval_s=0.05,
        heartbeat_interval_s=0.5,
    )
    with processes.file_server(root) as base:
        async with inprocess.running(store, config) as service:
            made = await service.client.post(
                "/asset/upload/url", json={"name": "not a video", "url": f"{base}/text.mp4"}
            )
            assert made.status_code == 201, made.text
            task_id = made.json()["task"]["id"]
            asset_id = made.json()["asset"]["id"]
            failed = await service.finish(task_id)
            assert failed["status"]["phase"] == "failed"
            async with _signed_in(service, service.secret) as (browser, csrf):
                page = await browser.get(f"/tasks/{task_id}")
                assert page.status_code == 200
                message = html.escape(failed["status"]["errorMessage"], quote=True)
                assert message in page.text  # on the task and on its attempt
                assert page.text.count(message) >= 2
                assert 'Attempt 1: <span class="outcome">failed</span>' in page.text
                assert "Retry task" in page.text and "Cancel task" not in page.text
                listed = await browser.get("/tasks?phase=failed")
                assert _ids_on(listed.text) == [task_id]

                retried = await browser.post(f"/tasks/{task_id}/retry", data={"csrf": csrf})
                assert retried.status_code == 303
                assert retried.headers["location"] == f"/tasks/{task_id}?done=retry"
                again = await service.finish(task_id)
                assert again["status"]["phase"] == "failed"  # the same file fails again
                events = await store.list_events(task_id)
                assert [e.name for e in events].count("claim") == 2
                asset = await store.get_asset(asset_id)
                assert asset.phase.value == "failed"
                page = await browser.get(f"/tasks/{task_id}")
                assert 'Attempt 2: <span class="outcome">failed</span>' in page.text


async def test_a_live_stream_ends_when_its_key_is_revoked(service: inprocess.Service) -> None:
    store = service.runtime.store
    key, secret = await store.create_api_key(service.project_id, "revoked soon")
    task = await _add(service, service.project_id)
    async with _signed_in(service, secret) as (browser, _):
        loop = asyncio.get_running_loop()
        # The in-process transport gives the answer once the stream has ended.
        stream = asyncio.create_task(browser.get(f"/tasks/live?ids={task.id}"))
        await asyncio.sleep(0.5)
        assert not stream.done()
        await store.revoke_api_key(key.id)
        revoked_at = loop.time()
        async with asyncio.timeout(30):
            answer = await stream
        assert loop.time() - revoked_at < 15
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        assert "event: status" in answer.text and f'"id":"{task.id}"' in answer.text
        assert '"waiting"' in answer.text and "event: counts" in answer.text
        assert (await browser.get("/tasks")).status_code == 303  # and the session is over
