"""The webhook and score pages over HTTP, on both task stores: what a page refuses and says,
what it never shows (a webhook's secret), and what another project's session cannot reach.
(The pages at work, in a real browser, are under ``tests/browser``.)"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import httpx

from mediatasks import settings, tasks, taskstore
from mediatasks.scores import service as scores_service
from tests import inprocess, scoregen

SECRET = "integration-secret-93ad"


def _token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found[1]


async def _sign_in(client: httpx.AsyncClient, secret: str) -> str:
    """Sign in; the session's CSRF token."""
    form = await client.get("/sign-in")
    signed = await client.post(
        "/sign-in", data={"csrf": _token(form), "api_key": secret, "next": "/webhooks"}
    )
    assert signed.status_code == 303
    return _token(await client.get("/webhooks"))


async def test_webhook_pages_refuse_bad_forms_and_never_show_the_secret(
    store: taskstore.TaskStore, tmp_path: Path
) -> None:
    config = settings.Settings(data_dir=tmp_path / "data")  # private URLs refused
    async with inprocess.running(store, config, worker=False) as service:
        web = service.viewer
        csrf = await _sign_in(web, service.secret)
        form = {"csrf": csrf, "name": "hook", "url": "http://127.0.0.1:9/hook"}
        refused = await web.post("/webhooks", data={**form, "events": ["asset.created"]})
        assert refused.status_code == 422
        assert "not allowed" in refused.text or "private" in refused.text, refused.text
        assert await store.list_webhooks(service.project_id) == []
        unknown_event = await web.post(
            "/webhooks", data={**form, "url": "https://hooks.invalid/x", "events": ["nope"]}
        )
        assert unknown_event.status_code == 422 and "Unknown events: nope" in unknown_event.text
        no_name = await web.post("/webhooks", data={**form, "name": " "})
        assert no_name.status_code == 422 and "Give the webhook a name" in no_name.text

        created = await web.post(
            "/webhooks",
            data={
                **form,
                "url": "https://hooks.invalid/x",
                "events": ["asset.created", "task.failed"],
                "shared_secret": SECRET,
            },
        )
        assert created.status_code == 303
        hook_path = created.headers["location"].split("?")[0]
        [hook] = await store.list_webhooks(service.project_id)
        assert hook.shared_secret == SECRET and list(hook.events) == [
            "asset.created",
            "task.failed",
        ]
        for path in ("/webhooks", hook_path, f"{hook_path}/edit", f"{hook_path}/log"):
            page = await web.get(path)
            assert page.status_code == 200, path
            assert SECRET not in page.text, path
        assert (await web.get(f"{hook_path}?status=sometimes")).status_code == 400

        # Saving without a new secret keeps it; "remove" removes it.
        kept = await web.post(
            hook_path, data={**form, "url": "https://hooks.invalid/y", "events": ["task.failed"]}
        )
        assert kept.status_code == 303
        hook = await store.get_webhook(hook.id, service.project_id)
        assert hook.shared_secret == SECRET and hook.url == "https://hooks.invalid/y"
        removed = await web.post(
            hook_path, data={**form, "url": "https://hooks.invalid/y", "remove_secret": "yes"}
        )
        assert removed.status_code == 303
        assert not (await store.get_webhook(hook.id, service.project_id)).shared_secret

        # Another project's session sees nothing of it and cannot change it.
        other_project = await store.create_project("other")
        _, other_secret = await store.create_api_key(other_project.id, "k")
        async with httpx.AsyncClient(
            transport=web._transport, base_url="http://testserver"
        ) as other:
            other_csrf = await _sign_in(other, other_secret)
            assert (await other.get(hook_path)).status_code == 404
            gone = await other.post(f"{hook_path}/delete", data={"csrf": other_csrf})
            assert gone.status_code == 404
            listed = (await other.get("/webhooks")).text
            assert hook.id not in listed and "hooks.invalid" not in listed
        assert await store.get_webhook(hook.id, service.project_id)

        # Without the token, a delete is refused; with it, it works.
        assert (await web.post(f"{hook_path}/delete", data={})).status_code == 403
        deleted = await web.post(f"{hook_path}/delete", data={"csrf": csrf})
        assert deleted.status_code == 303
        assert (await web.get(hook_path)).status_code == 404


async def test_score_pages_refuse_bad_files_and_keep_exports_to_their_project(
    store: taskstore.TaskStore, tmp_path: Path
) -> None:
    config = settings.Settings(data_dir=tmp_path / "data")
    async with inprocess.running(store, config, worker=False) as service:
        web = service.viewer
        csrf = await _sign_in(web, service.secret)
        assert (await web.get("/scores")).status_code == 200
        no_file = await web.post("/scores", data={"csrf": csrf})
        assert no_file.status_code == 422 and "Choose a score file" in no_file.text
        empty = await web.post("/scores", data={"csrf": csrf}, files={"file": ("a.xml", b"")})
        assert empty.status_code == 422 and "The file is empty" in empty.text
        silent = await web.post(
            "/scores",
            data={"csrf": csrf},
            files={"file": ("silent.mid", scoregen.midi_without_notes())},
        )
        assert silent.status_code == 422 and "no notes" in silent.text
        assert await scores_service.list_scores(service.runtime.blobs, service.project_id) == []

        xml = scoregen.musicxml(title="Page Score").encode()
        imported = await web.post(
            "/scores", data={"csrf": csrf}, files={"file": ("page.musicxml", xml)}
        )
        assert imported.status_code == 303
        score_path = imported.headers["location"].split("?")[0]
        [score] = await scores_service.list_scores(service.runtime.blobs, service.project_id)
        assert score_path == f"/scores/{score.id}" and score.title == "Page Score"
        # The same score through /v2, and a score made through /v2 on the page.
        seen = await web.get(
            f"/v2/scores/{score.id}", headers={"Authorization": f"Bearer {service.secret}"}
        )
        assert seen.status_code == 200 and seen.json()["title"] == "Page Score"
        made = await web.post(
            "/v2/scores",
            json={"data": base64.b64encode(scoregen.musicxml(title="Via API").encode()).decode()},
            headers={"Authorization": f"Bearer {service.secret}"},
        )
        assert made.status_code == 200
        assert "Via API" in (await web.get("/scores")).text

        bad_part = await web.post(
            f"{score_path}/exports", data={"csrf": csrf, "format": "wav", "parts": ["P9"]}
        )
        assert bad_part.status_code == 422 and "P9" in bad_part.text
        started = await web.post(f"{score_path}/exports", data={"csrf": csrf, "format": "mp3"})
        assert started.status_code == 303
        [queued] = await scores_service.list_exports(store, service.project_id, score_id=score.id)
        assert queued.phase is tasks.Phase.WAITING and queued.params["format"] == "mp3"
        row = await web.get(f"/scores/exports/{queued.id}/row")
        assert row.status_code == 200 and 'hx-trigger="every 1s"' in row.text
        assert "Waiting for a worker" in row.text
        # Not done: no audio yet.
        assert (await web.get(f"/scores/exports/{queued.id}/audio")).status_code == 404
        # A task of another type is no export.
        upload = await service.client.post("/asset/request-upload", json={"name": "v"})
        other_task = upload.json()["task"]["id"]
        assert (await web.get(f"/scores/exports/{other_task}/row")).status_code == 404

        other_project = await store.create_project("other")
        _, other_secret = await store.create_api_key(other_project.id, "k")
        async with httpx.AsyncClient(
            transport=web._transport, base_url="http://testserver"
        ) as other:
            other_csrf = await _sign_in(other, other_secret)
            assert (await other.get(score_path)).status_code == 404
            assert (await other.get(f"/scores/exports/{queued.id}/row")).status_code == 404
            assert "Page Score" not in (await other.get("/scores")).text
            refused = await other.post(
                f"{score_path}/exports", data={"csrf": other_csrf, "format": "mp3"}
            )
            assert refused.status_code == 404
        assert len(await scores_service.list_exports(store, service.project_id)) == 1
