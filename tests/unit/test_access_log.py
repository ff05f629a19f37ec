"""The request lines: one per request, batched, with the path but never the query string."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mediatasks import telemetry


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture(params=["text", "json"])
def stderr(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[io.StringIO]:
    captured = io.StringIO()
    monkeypatch.setattr("sys.stderr", captured)
    monkeypatch.setattr(telemetry, "_lines", telemetry._Lines())
    root = logging.getLogger()
    kept = (list(root.handlers), root.level)
    telemetry.configure_logging(request.param, "INFO")
    yield captured
    root.handlers[:] = kept[0]
    root.setLevel(kept[1])


async def test_each_request_is_one_line_without_its_query(stderr: io.StringIO) -> None:
    transport = httpx.ASGITransport(app=telemetry.HttpMetrics(_ok), client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for n in range(3):
            await client.get(f"/media/v{n}/index.m3u8", params={"jwt": "secret-token-x"})
        await client.get("/api/task/a%0Ab")
    assert stderr.getvalue() == ""  # not yet: written as one batch
    deadline = time.monotonic() + 5
    while stderr.getvalue().count("\n") < 4 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 4, lines
    if lines[0].startswith("{"):
        entries = [json.loads(line) for line in lines]
        assert [e["path"] for e in entries] == [
            *(f"/media/v{n}/index.m3u8" for n in range(3)),
            "/api/task/a\\nb",
        ]
        assert {(e["logger"], e["level"], e["method"], e["status"]) for e in entries} == {
            ("mediatasks.access", "INFO", "GET", 204)
        }
        assert entries[0]["message"].startswith('127.0.0.1:5000 "GET /media/v0/index.m3u8" 204 ')
    else:
        for n, line in enumerate(lines[:3]):
            assert f'mediatasks.access 127.0.0.1:5000 "GET /media/v{n}/index.m3u8" 204 ' in line
        assert '"GET /api/task/a\\nb" 204' in lines[3]
    assert "secret-token-x" not in stderr.getvalue()
