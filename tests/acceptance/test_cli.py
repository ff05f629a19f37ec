"""The ``mediatasks`` command as a user runs it: keys, and following tasks on a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import mediagen, processes

pytestmark = pytest.mark.slow


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mediatasks", *args],
        env={**os.environ, **env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[processes.Server]:
    with processes.serve(tmp_path) as running:
        yield running


def test_serve_prints_a_working_key(server: processes.Server) -> None:
    base = server.base_url
    printed = [line for line in server.proc.log().splitlines() if "API key:" in line]
    assert printed, server.proc.log()
    key = printed[0].split("API key:")[1].strip()
    assert httpx.get(f"{base}/api/task", headers={"Authorization": f"Bearer {key}"}).json() == []


def test_keys_and_tasks(server: processes.Server, tmp_path: Path) -> None:
    base, env = server.base_url, server.env
    created = cli("keys", "create", "--name", "ci", env=env)
    assert created.returncode == 0, created.stderr
    key_line, secret = created.stdout.strip().splitlines()[-2:]
    key_id = key_line.split()[1]
    listed = cli("keys", "list", env=env)
    assert key_id in listed.stdout and "bootstrap" in listed.stdout

    auth = {**env, "MEDIATASKS_SERVER_URL": base, "MEDIATASKS_API_KEY": secret}
    sources = tmp_path / "sources"
    sources.mkdir()
    mediagen.make_video(sources / "clip.mp4", seconds=2)
    with processes.file_server(sources) as files:
        body = {"name": "cli", "url": f"{files}/clip.mp4"}
        response = httpx.post(
            f"{base}/api/asset/upload/url", json=body, headers={"Authorization": f"Bearer {secret}"}
        )
        task_id = response.json()["task"]["id"]
        watched = cli("task", "watch", task_id, env=auth)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "completed" in watched.stdout

    shown = cli("task", "get", task_id, env=auth)
    assert '"phase": "completed"' in shown.stdout
    assert task_id in cli("task", "list", env=auth).stdout
    refused = cli("task", "cancel", task_id, env=auth)
    assert refused.returncode == 1 and "400" in refused.stdout
    missing = cli("task", "get", "nope", env=auth)
    assert missing.returncode == 1 and "404" in missing.stdout

    assert cli("keys", "revoke", key_id, env=env).returncode == 0
    after = cli("task", "list", env=auth)
    assert after.returncode == 1 and "401" in after.stdout
    assert cli("keys", "revoke", key_id, env=env).returncode == 1
