"""Profiles beyond the limits are refused with 422 when the request arrives, for every route that
takes them, with a message that names the profile, the field and the limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mediatasks import settings, taskstore
from tests import inprocess

GOOD: dict[str, Any] = {"name": "720p", "width": 1280, "height": 720, "bitrate": 3_000_000}

#: name -> (profiles, what the 422's message says)
REFUSED: dict[str, tuple[list[dict[str, Any]], str]] = {
    "2,000 renditions": (
        [{**GOOD, "name": f"r{i}"} for i in range(2000)],
        "too many transcode profiles: 2000, at most 10",
    ),
    "a bitrate of 10^15": (
        [GOOD, {**GOOD, "name": "huge", "bitrate": 10**15}],
        "profiles[1].bitrate is 1000000000000000: at most 288000000 bits per second",
    ),
    "10^9 frames per second": (
        [{**GOOD, "fps": 10**9}],
        "profiles[0]: 1000000000/1 = 1e+09 frames per second is out of range",
    ),
    "a frame every 1000 s": (
        [{**GOOD, "fps": 1, "fpsDen": 1000}],
        "profiles[0]: 1/1000 = 0.001 frames per second is out of range",
    ),
    "16K wide": ([{**GOOD, "width": 15360}], "profiles[0].width is 15360: at most 7680"),
    # Refused where the body is read, before any field is looked at.
    "tall beyond 2^63": ([{**GOOD, "height": 2**70}], f"the integer {2**70} is out of range"),
    "keyframes a day apart": ([{**GOOD, "gop": "86400"}], "profiles[0].gop is '86400'"),
    "keyframes at infinity": ([{**GOOD, "gop": "1e400"}], "give 'intra' or 0 to 60 seconds"),
}


@pytest.fixture
async def service(sqlite_url: str, tmp_path: Path) -> AsyncIterator[inprocess.Service]:
    store = taskstore.open_task_store(sqlite_url)
    await store.migrate()
    config = settings.Settings(data_dir=tmp_path / "data", allow_private_urls=True)
    async with inprocess.running(store, config, worker=False) as running:
        yield running
    await store.close()


def transcode_body(profiles: list[dict[str, Any]]) -> dict[str, Any]:
    bucket = {
        "type": "s3",
        "endpoint": "http://127.0.0.1:9",
        "bucket": "media",
        "credentials": {"accessKeyId": "a", "secretAccessKey": "s"},
    }
    return {
        "input": {"url": "http://127.0.0.1:9/in.mp4"},
        "storage": bucket,
        "outputs": {"hls": {"path": "/out"}},
        "profiles": profiles,
    }


ROUTES = {
    "/asset/upload/url": lambda p: {"name": "a", "url": "http://127.0.0.1:9/v.mp4", "profiles": p},
    "/asset/request-upload": lambda p: {"name": "a", "profiles": p},
    "/transcode": transcode_body,
}


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("case", list(REFUSED))
async def test_profiles_beyond_the_limits_are_refused(
    service: inprocess.Service, route: str, case: str
) -> None:
    profiles, message = REFUSED[case]
    answer = await service.client.post(route, json=ROUTES[route](profiles))
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]
    assert any(message in error for error in errors), errors
    assert (await service.client.get("/task")).json() == [], "nothing is created"


@pytest.mark.parametrize("route", list(ROUTES))
async def test_profiles_within_the_limits_are_taken(service: inprocess.Service, route: str) -> None:
    profiles = [
        GOOD,
        {**GOOD, "name": "8k", "width": 7680, "height": 4320, "bitrate": 288_000_000},
        {**GOOD, "name": "slow", "fps": 30000, "fpsDen": 1001, "gop": "60"},
        {**GOOD, "name": "intra", "gop": "intra"},
    ]
    answer = await service.client.post(route, json=ROUTES[route](profiles))
    assert answer.status_code in (200, 201), answer.text


async def test_the_limits_are_settings(sqlite_url: str, tmp_path: Path) -> None:
    store = taskstore.open_task_store(sqlite_url)
    await store.migrate()
    config = settings.Settings(data_dir=tmp_path / "data", max_profiles=1)
    async with inprocess.running(store, config, worker=False) as running:
        answer = await running.client.post(
            "/asset/request-upload", json={"name": "a", "profiles": [GOOD, GOOD]}
        )
        assert answer.status_code == 422
        assert "at most 1" in answer.text
    await store.close()
