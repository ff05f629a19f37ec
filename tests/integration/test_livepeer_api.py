"""The ``/api`` dialect against a real task store on each backend, in process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mediatasks import app, settings, tasks, taskstore
from mediatasks.api.runtime import Runtime
from mediatasks.blobstore.local import LocalBlobStore


async def _key(store: taskstore.TaskStore, name: str) -> tuple[str, str]:
    project = await store.create_project(name)
    _, secret = await store.create_api_key(project.id, name)
    return project.id, secret


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    application = app.create_app(runtime.settings, with_worker=False, runtime=runtime)
    _, secret = await _key(runtime.store, "main")
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver/api",
        headers={"Authorization": f"Bearer {secret}"},
    ) as http:
        yield http


async def _import(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    payload = {"name": "video.mp4", "url": "https://media.example.com/video.mp4", **body}
    return await client.post("/asset/upload/url", json=payload)


async def test_authentication_errors(client: httpx.AsyncClient) -> None:
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic x"},
    ):
        response = await client.get("/task", headers=headers)
        assert response.status_code == 401, response.text
        assert isinstance(response.json()["errors"], list)


async def test_import_creates_asset_and_task(client: httpx.AsyncClient) -> None:
    response = await _import(client, staticMp4=True, creatorId="someone")
    assert response.status_code == 201
    body = response.json()
    asset, task_id = body["asset"], body["task"]["id"]
    assert asset["name"] == "video.mp4"
    assert asset["source"] == {"type": "url", "url": "https://media.example.com/video.mp4"}
    assert asset["status"]["phase"] == "waiting"
    assert asset["creatorId"] == {"type": "unverified", "value": "someone"}
    assert len(asset["playbackId"]) == 16
    # The SDK sends an octet-stream content type with an empty body on GET.
    got = await client.get(f"/task/{task_id}", headers={"Content-Type": "application/octet-stream"})
    assert got.status_code == 200
    task = got.json()
    assert task["type"] == "upload"
    assert task["status"]["phase"] == "waiting"
    assert isinstance(task["status"]["updatedAt"], int)
    assert task["status"]["retries"] == 0
    assert task["outputAssetId"] == asset["id"]
    assert task["params"]["upload"]["url"] == "https://media.example.com/video.mp4"
    assert (await client.get(f"/asset/{asset['id']}")).json()["id"] == asset["id"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": None},
        {"url": "ftp://example.com/a.mp4"},
        {"url": "http://127.0.0.1/a.mp4"},
        {"url": "http://[::1]:8000/a.mp4"},
        {"url": "http://169.254.169.254/latest"},
        {"url": "http://localhost/a.mp4"},
        {"profiles": []},
        {"profiles": [{"name": "x", "width": 64, "height": 64, "bitrate": 1000}]},
        {"unknownField": 1},
        {"targetSegmentSizeSecs": "ten"},
    ],
)
async def test_bad_imports_are_422(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    payload = {"name": "v", "url": "https://media.example.com/v.mp4"}
    payload.update(body)
    payload = {k: v for k, v in payload.items() if v is not None}
    response = await client.post("/asset/upload/url", json=payload)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] and all(isinstance(e, str) for e in response.json()["errors"])


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/asset/upload/url", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert "errors" in response.json()


async def test_credentials_in_urls_are_masked(client: httpx.AsyncClient) -> None:
    url = "https://user:pa55w0rd@media.example.com/v.mp4?token=t0k3n-value"
    response = await _import(client, url=url)
    task = (await client.get(f"/task/{response.json()['task']['id']}")).json()
    shown = json.dumps(task)
    assert "pa55w0rd" not in shown and "t0k3n-value" not in shown
    assert "***" in task["params"]["upload"]["url"]


async def test_projects_never_see_each_other(runtime: Runtime, client: httpx.AsyncClient) -> None:
    created = (await _import(client)).json()
    _, other_secret = await _key(runtime.store, "other")
    other = {"Authorization": f"Bearer {other_secret}"}
    for path in (f"/task/{created['task']['id']}", f"/asset/{created['asset']['id']}"):
        response = await client.get(path, headers=other)
        assert response.status_code == 404
        assert response.json() == {"errors": [response.json()["errors"][0]]}
    assert (await client.get("/task", headers=other)).json() == []
    assert (await client.get("/asset", headers=other)).json() == []
    for method, path in (
        ("POST", f"/task/{created['task']['id']}/cancel"),
        ("POST", f"/task/{created['task']['id']}/retry"),
        ("DELETE", f"/asset/{created['asset']['id']}"),
    ):
        assert (await client.request(method, path, headers=other)).status_code == 404
    assert (await client.get(f"/task/{created['task']['id']}")).status_code == 200


async def test_unknown_task_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/task/does-not-exist")
    assert response.status_code == 404
    assert response.json() == {"errors": ["task not found"]}


async def test_list_pages_with_link_and_total(runtime: Runtime, client: httpx.AsyncClient) -> None:
    project = await runtime.store.authenticate(client.headers["Authorization"].split()[1])
    assert project is not None
    for i in range(5):
        await runtime.store.create_task(
            taskstore.NewTask(project_id=project.project_id, type="upload", params={"i": i})
        )
    first = await client.get("/task", params={"limit": 2, "count": 1})
    assert len(first.json()) == 2
    assert first.headers["X-Total-Count"] == "5"
    assert 'rel="next"' in first.headers["Link"] and "cursor=" in first.headers["Link"]
    seen = [t["id"] for t in first.json()]
    next_url = first.headers["Link"].split(">")[0].lstrip("<")
    next_cursor = httpx.URL(next_url).params["cursor"]
    while next_url:
        page = await client.get(next_url)
        seen += [t["id"] for t in page.json()]
        link = page.headers.get("Link")
        next_url = link.split(">")[0].lstrip("<") if link else ""
    assert len(seen) == len(set(seen)) == 5
    exact = await client.get("/task", params={"limit": 5})
    assert "Link" not in exact.headers
    assert len((await client.get("/task", params={"limit": "abc"})).json()) == 5
    ordered = await client.get("/task", params={"order": "createdAt-false"})
    created = [t["createdAt"] for t in ordered.json()]
    assert created == sorted(created)
    filtered = await client.get(
        "/task", params={"filters": json.dumps([{"id": "type", "value": "upload"}])}
    )
    assert len(filtered.json()) == 5
    for bad in (
        {"filters": "[{"},
        {"filters": '[{"id": "params", "value": 1}]'},
        {"order": "x-true"},
        {"cursor": "zzz"},
        {"cursor": "skip99999999999999999999999"},
        {"filters": json.dumps([{"id": "createdAt", "value": "abc"}])},
        {"filters": json.dumps([{"id": "id", "value": 5}])},
        {"filters": json.dumps([{"id": "createdAt", "value": {"gt": 2**64}}])},
        # A cursor made for one order does not continue another.
        {"cursor": next_cursor, "order": "createdAt-false"},
    ):
        response = await client.get("/task", params=bad)
        assert response.status_code == 400, bad
        assert response.json()["errors"]


async def test_cancel_and_retry(client: httpx.AsyncClient) -> None:
    task_id = (await _import(client)).json()["task"]["id"]
    assert (await client.post(f"/task/{task_id}/retry")).status_code == 400
    cancelled = await client.post(f"/task/{task_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"]["phase"] == "cancelled"
    assert (await client.post(f"/task/{task_id}/cancel")).status_code == 400
    retried = await client.post(f"/task/{task_id}/retry")
    assert retried.json() == {"id": task_id}
    assert (await client.get(f"/task/{task_id}")).json()["status"]["phase"] == "waiting"


async def test_delete_asset(runtime: Runtime, client: httpx.AsyncClient) -> None:
    created = (await _import(client)).json()
    asset_id = created["asset"]["id"]
    assert (await client.delete(f"/asset/{asset_id}")).status_code == 204
    assert (await client.get(f"/asset/{asset_id}")).status_code == 404
    assert (await client.delete(f"/asset/{asset_id}")).status_code == 404
    task = await runtime.store.get_task(created["task"]["id"])
    assert task.phase is tasks.Phase.CANCELLED


async def test_an_unreachable_store_is_503_not_500(tmp_path: Path) -> None:
    config = settings.Settings(data_dir=tmp_path)
    broken = taskstore.open_task_store("sqlite:////proc/no-such-folder/tasks.db")
    runtime = Runtime(settings=config, store=broken, blobs=LocalBlobStore(tmp_path / "media"))
    application = app.create_app(config, with_worker=False, runtime=runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://testserver/api"
    ) as http:
        response = await http.get("/task", headers={"Authorization": "Bearer mt_x"})
    assert response.status_code == 503
    assert "unavailable" in response.json()["errors"][0]
    await broken.close()


async def test_other_dialects_tasks_stay_out_of_the_livepeer_view(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    key = await runtime.store.authenticate(client.headers["Authorization"].split()[1])
    assert key is not None
    flat = await runtime.store.create_task(
        taskstore.NewTask(project_id=key.project_id, type="audio-export", params={})
    )
    mine = await runtime.store.create_task(
        taskstore.NewTask(project_id=key.project_id, type="upload", params={})
    )
    listed = await client.get("/task", params={"count": 1})
    assert [t["id"] for t in listed.json()] == [mine.id]
    assert listed.headers["X-Total-Count"] == "1"
    for method, path in (
        ("GET", f"/task/{flat.id}"),
        ("POST", f"/task/{flat.id}/cancel"),
        ("POST", f"/task/{flat.id}/retry"),
        ("GET", f"/task/{flat.id}/events"),
    ):
        assert (await client.request(method, path)).status_code == 404, path


async def test_media_serves_only_asset_files(runtime: Runtime, client: httpx.AsyncClient) -> None:
    source = runtime.settings.data_dir / "blob"
    source.write_bytes(b"secret score")
    await runtime.blobs.put_file("scores/p/s/score.xml", source)
    await runtime.blobs.put_file("asset/abc/hls/index.m3u8", source)
    media = str(client.base_url).removesuffix("/api/").removesuffix("/api") + "/media"
    assert (await client.get(f"{media}/scores/p/s/score.xml")).status_code == 404
    # A file under asset/ that no ready asset owns is not public media either.
    assert (await client.get(f"{media}/asset/abc/hls/index.m3u8")).status_code == 404
    assert (await client.get(f"{media}/asset/../scores/p/s/score.xml")).status_code == 404
