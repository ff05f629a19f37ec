"""``GET /v2/tasks``: this service's addition to Flat's API, which has no task list."""

from __future__ import annotations

from pathlib import Path

from mediatasks import settings, taskstore
from tests import inprocess, scoregen

V2 = "http://testserver/v2"


async def test_lists_the_projects_audio_exports_newest_first(
    store: taskstore.TaskStore, tmp_path: Path
) -> None:
    config = settings.Settings(data_dir=tmp_path / "data")
    async with inprocess.running(store, config, worker=False) as service:
        score = (
            await service.client.post(
                f"{V2}/scores", json={"data": scoregen.musicxml(), "filename": "s.musicxml"}
            )
        ).json()
        made = []
        for audio_format in ("mp3", "wav"):
            url = f"{V2}/scores/{score['id']}/revisions/last/{audio_format}/task"
            made.append((await service.client.post(url)).json()["id"])
        await store.create_task(
            taskstore.NewTask(project_id=service.project_id, type="noop", params={})
        )

        listed = await service.client.get(f"{V2}/tasks")
        assert listed.status_code == 200
        assert [t["id"] for t in listed.json()] == made[::-1]
        assert {t["type"] for t in listed.json()} == {"audio-export"}
        assert [
            t["id"] for t in (await service.client.get(f"{V2}/tasks?state=created")).json()
        ] == made[::-1]
        assert (await service.client.get(f"{V2}/tasks?state=done")).json() == []
        assert len((await service.client.get(f"{V2}/tasks?limit=1")).json()) == 1
        for bad in ("state=finished", "limit=0", "limit=101"):
            refused = await service.client.get(f"{V2}/tasks?{bad}")
            assert refused.status_code == 400 and refused.json()["code"] == "CLIENT_ERROR"

        other = await store.create_project("other")
        _, secret = await store.create_api_key(other.id, "k")
        theirs = await service.client.get(
            f"{V2}/tasks", headers={"Authorization": f"Bearer {secret}"}
        )
        assert theirs.status_code == 200 and theirs.json() == []
        assert (
            await service.client.get(f"{V2}/tasks", headers={"Authorization": ""})
        ).status_code == 401
