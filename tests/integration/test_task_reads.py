"""``GET /api/task/{id}`` and ``GET /api/task`` answered below FastAPI (``reads.TaskReads``) say
byte for byte what the Livepeer application's own routes say, errors included."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from mediatasks import app, tasks, taskstore
from mediatasks.api.livepeer.routes import create_livepeer_app
from mediatasks.api.runtime import Runtime


def _client(application: object, secret: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application),  # type: ignore[arg-type]
        base_url="http://testserver/api",
        headers={"Authorization": f"Bearer {secret}"},
    )


async def test_task_reads_answer_what_the_routes_answer(runtime: Runtime) -> None:
    store = runtime.store
    project = await store.create_project("main")
    _, secret = await store.create_api_key(project.id, "main")
    other = await store.create_project("other")
    _, other_secret = await store.create_api_key(other.id, "other")
    ids = []
    for n in range(3):
        task = await store.create_task(
            taskstore.NewTask(
                project_id=project.id,
                type=tasks.TaskType.NOOP,
                params={"n": n, "url": f"https://u:p@media.test/{n}?token=t&x=1"},
                phase=tasks.Phase.WAITING,
            )
        )
        ids.append(task.id)
    hidden = await store.create_task(
        taskstore.NewTask(project_id=project.id, type="audio-export", params={})
    )
    theirs = await store.create_task(
        taskstore.NewTask(project_id=other.id, type=tasks.TaskType.NOOP, params={})
    )

    whole = app.create_app(runtime.settings, with_worker=False, runtime=runtime)
    # The Livepeer application mounted alone: no TaskReads in front of its routes.
    routes_only = Starlette(routes=[Mount("/api", create_livepeer_app(runtime))])
    requests: list[tuple[str, dict[str, str]]] = [
        (f"/task/{ids[0]}", {}),
        (f"/task/{ids[1]}", {}),
        (f"/task/{hidden.id}", {}),
        (f"/task/{theirs.id}", {}),
        ("/task/nosuchtask", {}),
        (f"/task/{ids[0]}", {"Authorization": ""}),
        (f"/task/{ids[0]}", {"Authorization": "Basic x"}),
        (f"/task/{ids[0]}", {"Authorization": "Bearer nope"}),
        (f"/task/{theirs.id}", {"Authorization": f"Bearer {other_secret}"}),
        ("/task", {}),
        ("/task?limit=1", {}),
        ("/task?limit=2&count=1", {}),
        ("/task?order=updatedAt-false&limit=1", {}),
        ('/task?filters=[{"id":"type","value":"noop"}]', {}),
        ("/task?filters=nonsense", {}),
        ("/task?cursor=nonsense", {}),
        ("/task?order=nosuchfield-true", {}),
        ("/task?projectId=x", {}),
        ("/task?limit=%0A", {}),
        ("/task", {"Authorization": ""}),
    ]
    async with _client(whole, secret) as fast, _client(routes_only, secret) as slow:
        first = (await fast.get("/task?limit=1")).headers["link"]
        cursor = first.split("cursor=")[1].split(">")[0]
        requests.append((f"/task?limit=1&cursor={cursor}", {}))
        for path, headers in requests:
            got = await fast.get(path, headers=headers)
            expected = await slow.get(path, headers=headers)
            assert got.status_code == expected.status_code, path
            assert got.content == expected.content, path
            assert got.headers.raw == expected.headers.raw, path


async def test_what_task_reads_does_not_answer_reaches_the_application(runtime: Runtime) -> None:
    project = await runtime.store.create_project("main")
    _, secret = await runtime.store.create_api_key(project.id, "main")
    whole = app.create_app(runtime.settings, with_worker=False, runtime=runtime)
    async with _client(whole, secret) as client:
        assert (await client.head("/task")).status_code == 405
        assert (await client.get("/task/x%0A")).status_code == 404
        assert (await client.get("/task/a/b")).status_code == 404
        assert (await client.get("/tasks")).status_code == 404
        trailing = await client.get("/task/", follow_redirects=False)
        assert trailing.status_code in (307, 404)
        assert (await client.post("/task/x/retry")).status_code == 404
