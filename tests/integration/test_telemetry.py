"""``/metrics`` as Prometheus reads it (prometheus-client's own parser), before and after real
work: a URL import transcoded by a worker, a webhook delivered, a request to no route."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mediatasks import settings, tasks, taskstore, telemetry
from mediatasks.webhooks import sender
from tests import inprocess, mediagen, processes, receiver

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("http://testserver/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == telemetry.CONTENT_TYPE
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def names(samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float]) -> set[str]:
    return {name for name, _ in samples}


async def test_metrics_move_with_a_real_upload_task(
    store: taskstore.TaskStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = settings.Settings(
        data_dir=tmp_path / "data", allow_private_urls=True, heartbeat_interval_s=0.5
    )
    sources = tmp_path / "sources"
    sources.mkdir()
    mediagen.make_video(sources / "clip.mp4", seconds=1)
    caplog.set_level(logging.INFO, logger="mediatasks")
    with (
        processes.file_server(sources) as files,
        receiver.receiving("s3cret") as hooks_seen,
    ):
        async with inprocess.running(store, config) as service:
            hook = await service.client.post(
                "/webhook",
                json={
                    "name": "m",
                    "url": hooks_seen.url,
                    "events": ["task.completed"],
                    "sharedSecret": "s3cret",
                },
            )
            assert hook.status_code == 200, hook.text
            pending = await service.client.post("/asset/request-upload", json={"name": "later"})
            assert pending.status_code == 200
            before = await scrape(service.client)
            depth = (
                "mediatasks_queue_depth",
                frozenset({("type", "upload"), ("phase", "pending")}),
            )
            assert before[depth] == 1

            created = await service.client.post(
                "/asset/upload/url", json={"name": "clip", "url": f"{files}/clip.mp4"}
            )
            assert created.status_code == 201
            task_id = created.json()["task"]["id"]
            done = await service.finish(task_id)
            assert done["status"]["phase"] == "completed", done
            await service.client.get("/no/such/route")
            delivery = sender.Sender(config, store)
            try:
                while not hooks_seen.accepted:
                    await delivery.step()
                    await asyncio.sleep(0.05)
            finally:
                await delivery.close()
            after = await scrape(service.client)

    upload = {"type": "upload"}
    assert moved(before, after, "mediatasks_task_claims_total", **upload) == 1
    assert (
        moved(before, after, "mediatasks_tasks_finished_total", outcome="completed", **upload) == 1
    )
    for histogram in (
        "mediatasks_task_duration_seconds",
        "mediatasks_task_attempt_duration_seconds",
    ):
        labels = {"outcome": "completed", **upload}
        assert moved(before, after, f"{histogram}_count", **labels) == 1
        assert moved(before, after, f"{histogram}_sum", **labels) > 0
        assert value(after, f"{histogram}_bucket", le="+Inf", **labels) >= 1
    assert moved(before, after, "mediatasks_ffmpeg_speed_ratio_count", **upload) == 1
    assert moved(before, after, "mediatasks_ffmpeg_speed_ratio_sum", **upload) > 0
    assert moved(before, after, "mediatasks_webhook_deliveries_total", outcome="delivered") >= 1
    assert (
        moved(
            before, after, "mediatasks_webhook_delivery_duration_seconds_count", outcome="delivered"
        )
        >= 1
    )
    route = {"dialect": "livepeer", "route": "/api/asset/upload/url", "method": "POST"}
    assert moved(before, after, "mediatasks_http_requests_total", status="201", **route) == 1
    assert moved(before, after, "mediatasks_http_request_duration_seconds_count", **route) == 1
    polled = {"dialect": "livepeer", "route": "/api/task/{task_id}", "method": "GET"}
    assert moved(before, after, "mediatasks_http_requests_total", status="200", **polled) >= 1
    unmatched = {"dialect": "livepeer", "route": "unmatched", "method": "GET", "status": "404"}
    assert moved(before, after, "mediatasks_http_requests_total", **unmatched) == 1
    # No raw path or id ever becomes a label value.
    labels = {v for _, pairs in after for _, v in pairs}
    assert task_id not in labels and not any("/no/such" in v for v in labels)
    assert {"process_cpu_seconds_total", "mediatasks_build_info"} <= names(after)

    # One log line per transition, with what an operator greps for.
    lines = [r for r in caplog.records if r.name == "mediatasks.task" and task_id in r.getMessage()]
    events = [getattr(r, "event", "") for r in lines]
    assert events == ["task.claimed", "task.completed"], events
    completed = lines[-1]
    assert completed.task_type == "upload" and completed.attempt == 1  # type: ignore[attr-defined]
    assert completed.duration_s > 0 and completed.worker  # type: ignore[attr-defined]
    assert "no longer ours" not in caplog.text and "task.stopped" not in str(events)


async def test_queue_depth_is_read_from_the_store_and_cached(store: taskstore.TaskStore) -> None:
    project = await store.create_project("p")
    await store.create_task(taskstore.NewTask(project_id=project.id, type="noop", params={}))
    fresh = telemetry.QueueDepth(store, max_age_s=0)
    cached = telemetry.QueueDepth(store, max_age_s=60)
    await fresh.refresh()
    await cached.refresh()
    await store.create_task(taskstore.NewTask(project_id=project.id, type="noop", params={}))
    await fresh.refresh()
    await cached.refresh()

    def count(depth: telemetry.QueueDepth) -> float:
        [family] = list(depth.collect())
        [sample] = family.samples
        assert sample.labels == {"type": "noop", "phase": str(tasks.Phase.WAITING)}
        return sample.value

    assert (count(fresh), count(cached)) == (2, 1)


class _Hanging:
    """A task store whose count never comes back (a database that stopped answering)."""

    async def queue_depth(self) -> Mapping[tuple[str, tasks.Phase], int]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


async def test_a_store_that_cannot_answer_leaves_a_gap_not_a_stale_number() -> None:
    depth = telemetry.QueueDepth(_Hanging(), max_age_s=0, timeout_s=0.2)  # type: ignore[arg-type]
    started = asyncio.get_running_loop().time()
    page = await telemetry.render(depth)
    assert asyncio.get_running_loop().time() - started < 1
    assert b"mediatasks_queue_depth" not in page and b"mediatasks_tasks_finished_total" in page
