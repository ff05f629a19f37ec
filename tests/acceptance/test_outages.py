"""The store goes away under a running service: requests that need it answer 503 within 2 s,
whatever the outage's shape, and the service is back within 5 s of the store coming back.

PostgreSQL is reached through a proxy that the test breaks: ``refuse`` (the server is gone) and
``hang`` (it accepts and never answers), alone and one after the other.  SQLite's equivalent is a
database that another process keeps locked.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.parse
from pathlib import Path

import httpx
import pytest

from tests import processes, tcpproxy

pytestmark = pytest.mark.slow

WEBHOOK = {"name": "h", "url": "http://127.0.0.1:9/hook", "events": ["task.completed"]}


def _client(api: processes.Server) -> httpx.Client:
    return httpx.Client(
        base_url=f"{api.base_url}/api",
        headers={"Authorization": f"Bearer {api.key}"},
        timeout=30,
    )


def _answer(client: httpx.Client, method: str, path: str, **kw: object) -> tuple[int, float]:
    started = time.monotonic()
    answer = client.request(method, path, **kw)  # type: ignore[arg-type]
    return answer.status_code, time.monotonic() - started


def _unavailable_fast(client: httpx.Client) -> None:
    for method, path, kw in (
        ("GET", "/task", {}),
        ("GET", "/webhook", {}),
        ("POST", "/webhook", {"json": WEBHOOK}),
    ):
        started = time.monotonic()
        answer = client.request(method, path, **kw)  # type: ignore[arg-type]
        took = time.monotonic() - started
        assert answer.status_code == 503, (method, path, answer.text)
        assert answer.json()["errors"], answer.text
        assert took < 2.0, f"{method} {path}: 503 after {took:.2f} s"


def _back_within(client: httpx.Client, limit_s: float) -> float:
    started = time.monotonic()
    while True:
        status, _ = _answer(client, "GET", "/webhook")
        if status == 200:
            return time.monotonic() - started
        assert status == 503
        assert time.monotonic() - started < limit_s, "the service did not come back in time"
        time.sleep(0.1)


@pytest.mark.postgres
@pytest.mark.parametrize("shape", ["refuse", "hang", "hang-then-refuse"])
def test_postgres_outage(tmp_path: Path, pg_url: str, shape: str) -> None:
    parts = urllib.parse.urlsplit(pg_url)
    with tcpproxy.proxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        url = parts._replace(netloc=f"postgres@127.0.0.1:{proxy.port}").geturl()
        with processes.serve(tmp_path, "--no-worker", database_url=url) as api, _client(api) as c:
            assert c.post("/webhook", json=WEBHOOK).status_code == 200
            for step in shape.split("-then-"):
                _break(proxy, step)
                _unavailable_fast(c)
                _unavailable_fast(c)  # again, once the first calls left connections behind
            proxy.restore()
            took = _back_within(c, 5.0)
            print(f"\nPostgreSQL {shape}: answering again {took:.2f} s after it came back")
            assert c.post("/webhook", json=WEBHOOK).status_code == 200
            assert len(c.get("/webhook").json()) == 2


def test_sqlite_locked_database(tmp_path: Path) -> None:
    with processes.serve(tmp_path, "--no-worker") as api, _client(api) as c:
        assert c.post("/webhook", json=WEBHOOK).status_code == 200
        holder = sqlite3.connect(api.data_dir / "mediatasks.db", isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            for _ in range(2):
                status, took = _answer(c, "POST", "/webhook", json=WEBHOOK)
                assert status == 503 and took < 2.0, (status, took)
            status, took = _answer(c, "GET", "/webhook")
            assert status == 200 and took < 1.0, "reads do not wait for the write lock"
            holder.execute("ROLLBACK")
            status, took = _answer(c, "POST", "/webhook", json=WEBHOOK)
            assert status == 200 and took < 1.0, (status, took)
        finally:
            holder.close()
        assert len(c.get("/webhook").json()) == 2


def _break(proxy: tcpproxy.Proxy, shape: str) -> None:
    """``refuse``: the server is down; ``hang``: it accepts and never answers."""
    if shape == "refuse":
        proxy.refuse()
    else:
        assert shape == "hang"
        proxy.blackhole()
