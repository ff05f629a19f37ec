"""The service in this process: the app over a real task store, a worker, and an /api client."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx

from mediatasks import app, settings, taskstore
from mediatasks.api.runtime import Runtime
from mediatasks.blobstore import base as blobstore
from mediatasks.blobstore.local import LocalBlobStore
from mediatasks.worker import handlers, loop

__all__ = ["Service", "running"]


@dataclasses.dataclass(frozen=True)
class Service:
    """A running service, a client that holds an API key of its project, and a viewer's client
    (no key, at the root: for ``/media``)."""

    client: httpx.AsyncClient
    viewer: httpx.AsyncClient
    runtime: Runtime
    project_id: str
    secret: str

    async def finish(self, task_id: str, timeout_s: float = 60) -> dict[str, Any]:
        """Poll ``GET /task/{id}`` until the task completes, fails or is cancelled."""
        async with asyncio.timeout(timeout_s):
            while True:
                task: dict[str, Any] = (await self.client.get(f"/task/{task_id}")).json()
                if task["status"]["phase"] in ("completed", "failed", "cancelled"):
                    return task
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(
    store: taskstore.TaskStore,
    config: settings.Settings,
    *,
    blobs: blobstore.BlobStore | None = None,
    worker: bool = True,
) -> AsyncIterator[Service]:
    """The app (and a worker) on ``store``, with a project and a key; stopped on exit."""
    blobs = blobs or LocalBlobStore(config.media_dir)
    runtime = Runtime(settings=config, store=store, blobs=blobs)
    project = await store.create_project("p")
    _, secret = await store.create_api_key(project.id, "k")
    runner = loop.Worker(config, store, blobs, handlers.registry()) if worker else None
    job = asyncio.create_task(runner.run()) if runner is not None else None
    application = app.create_app(config, with_worker=False, runtime=runtime)
    try:
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=application),
                base_url="http://testserver/api",
                headers={"Authorization": f"Bearer {secret}"},
            ) as client,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=application), base_url="http://testserver"
            ) as viewer,
        ):
            yield Service(
                client=client,
                viewer=viewer,
                runtime=runtime,
                project_id=project.id,
                secret=secret,
            )
    finally:
        if runner is not None and job is not None:
            runner.stop()
            await job
        await blobs.close()
