"""Health as an operator meets it: ``/readyz`` follows the database through an outage, and a
service that cannot work refuses to start, with one line that says why."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import httpx
import pytest

from tests import processes, s3server, tcpproxy

pytestmark = pytest.mark.slow


@pytest.mark.postgres
def test_readyz_follows_the_database_through_a_broken_network(pg_url: str, tmp_path: Path) -> None:
    parts = urllib.parse.urlsplit(pg_url)
    with tcpproxy.proxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        through = parts._replace(netloc=f"{parts.username}@{proxy.url_host}").geturl()
        with processes.serve(tmp_path, "--no-worker", database_url=through) as server:
            ready = httpx.get(f"{server.base_url}/readyz", timeout=5)
            assert ready.status_code == 200
            assert ready.json() == {
                "status": "ready",
                "checks": {"taskStore": "ok", "mediaStore": "ok"},
            }

            proxy.blackhole()  # PostgreSQL stops answering; connections stay open
            started = time.monotonic()
            broken = httpx.get(f"{server.base_url}/readyz", timeout=5)
            elapsed_s = time.monotonic() - started
            assert broken.status_code == 503, broken.text
            assert elapsed_s < 1.0, elapsed_s
            body = broken.json()
            assert body["status"] == "unavailable"
            assert body["checks"]["taskStore"] == "no answer within 0.8 s"
            assert body["checks"]["mediaStore"] == "ok"
            # Alive all the same: a restart would not help.
            assert httpx.get(f"{server.base_url}/healthz", timeout=5).status_code == 200
            # Again, while the first ping is still stuck: still answered in time.
            started = time.monotonic()
            assert httpx.get(f"{server.base_url}/readyz", timeout=5).status_code == 503
            assert time.monotonic() - started < 1.0

            proxy.restore()
            deadline = time.monotonic() + 40
            status = 503
            while time.monotonic() < deadline and status != 200:
                time.sleep(0.2)
                status = httpx.get(f"{server.base_url}/readyz", timeout=5).status_code
            assert status == 200


def _start(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mediatasks", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    """What a failed start said: exactly one line, on stderr, and no traceback."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_an_unreachable_task_store_stops_start_up_at_once(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{processes.free_port()}/nothing"
    env = {"MEDIATASKS_DATA_DIR": str(tmp_path), "MEDIATASKS_DATABASE_URL": url}
    for command in (["serve", "--port", str(processes.free_port())], ["worker"]):
        started = time.monotonic()
        line = _one_line(_start(command, env))
        assert time.monotonic() - started < 15
        assert line.startswith("mediatasks: cannot start: the task store cannot be used: ")
        assert "PostgreSQL is unavailable" in line and "Connection refused" in line


def test_an_ffmpeg_that_cannot_run_stops_start_up(tmp_path: Path) -> None:
    env = {
        "MEDIATASKS_DATA_DIR": str(tmp_path),
        "MEDIATASKS_FFMPEG_PATH": str(tmp_path / "no-ffmpeg-here"),
    }
    line = _one_line(_start(["worker"], env))
    assert line.startswith("mediatasks: cannot start: FFmpeg cannot run (MEDIATASKS_FFMPEG_PATH): ")
    assert "no-ffmpeg-here" in line


def test_a_missing_bucket_stops_start_up_unless_asked_to_create_it(tmp_path: Path) -> None:
    with s3server.moto_server(tmp_path / "moto.log") as moto:
        env = {
            "MEDIATASKS_DATA_DIR": str(tmp_path / "data"),
            "MEDIATASKS_BLOB_STORE_URL": "s3://not-made-yet/media",
            "MEDIATASKS_S3_ENDPOINT_URL": moto.endpoint_url,
            "MEDIATASKS_S3_ACCESS_KEY_ID": s3server.ACCESS_KEY,
            "MEDIATASKS_S3_SECRET_ACCESS_KEY": s3server.SECRET_KEY,
        }
        line = _one_line(_start(["worker"], env))
        host = urllib.parse.urlsplit(moto.endpoint_url).netloc
        assert line == (
            "mediatasks: cannot start: the bucket "
            f"'not-made-yet' does not exist at {host}: create it, or start with --create-bucket "
            "(MEDIATASKS_S3_CREATE_BUCKET=true)"
        )
        assert s3server.SECRET_KEY not in line

        port = processes.free_port()
        proc = processes.start(
            ["serve", "--create-bucket", "--port", str(port)], env, tmp_path / "serve.log"
        )
        try:
            processes.wait_http(f"http://127.0.0.1:{port}/readyz", proc)
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz").json()
            assert ready["checks"] == {"taskStore": "ok", "mediaStore": "ok"}
        finally:
            proc.stop()
        client = moto.client()
        try:
            assert "not-made-yet" in {b["Name"] for b in client.list_buckets()["Buckets"]}
        finally:
            client.close()
