"""The ``mediatasks`` command as a user runs it, against a real server: keys, login, uploads that
survive a cut connection and an interrupted command, imports, scores, and every read as JSON."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import mediagen, processes, scoregen, tcpproxy

pytestmark = pytest.mark.slow


def cli(
    *args: str, env: dict[str, str], cwd: Path | None = None, columns: int = 200
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mediatasks", *args],
        env={**os.environ, **env, "COLUMNS": str(columns)},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def parsed(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[processes.Server]:
    with processes.serve(tmp_path) as running:
        yield running


@pytest.fixture
def user(tmp_path: Path) -> dict[str, str]:
    """A user's environment: their own configuration folder, no server or key variables."""
    home = tmp_path / "home"
    (home / "elsewhere").mkdir(parents=True)
    return {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}


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
    assert {k["id"] for k in parsed(cli("keys", "list", "--json", env=env))} >= {key_id}

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

    assert parsed(cli("task", "get", task_id, env=auth))["status"]["phase"] == "completed"
    assert task_id in cli("task", "list", env=auth).stdout
    refused = cli("task", "cancel", task_id, env=auth)
    assert refused.returncode == 1 and "400" in refused.stderr
    missing = cli("task", "get", "nope", env=auth)
    assert missing.returncode == 1 and "404" in missing.stderr and "Traceback" not in missing.stderr

    assert cli("keys", "revoke", key_id, env=env).returncode == 0
    # A serving process trusts a key it has checked for up to half a second (api.keyring): the
    # revoke reaches it within a second.
    revoked = time.monotonic()
    bearer = {"Authorization": f"Bearer {secret}"}
    while True:
        started = time.monotonic()
        if httpx.get(f"{base}/api/task", headers=bearer).status_code == 401:
            break
        assert started - revoked < 1.0, "the revoked key was still accepted"
    after = cli("task", "list", env=auth)
    assert after.returncode == 1 and "401" in after.stderr
    assert cli("keys", "revoke", key_id, env=env).returncode == 1


def test_keys_without_a_store_say_so_and_create_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    listed = cli("keys", "list", env={}, cwd=empty)
    assert listed.returncode == 1
    assert f"no task store at {empty / 'data' / 'mediatasks.db'}" in listed.stderr
    assert "Traceback" not in listed.stderr
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize("stopped", ["while serving", "while making the video"])
def test_sample_removes_its_temporary_folder_when_stopped_with_sigterm(
    stopped: str, tmp_path: Path
) -> None:
    temp = tmp_path / "tmp"  # the command's own TMPDIR, so that its folder can be seen
    temp.mkdir()
    port = processes.free_port()
    seconds = "1" if stopped == "while serving" else "600"
    proc = processes.start(
        ["sample", "--port", str(port), "--seconds", seconds],
        {"TMPDIR": str(temp)},
        tmp_path / "sample.log",
    )
    try:
        if stopped == "while serving":
            processes.wait_http(f"http://127.0.0.1:{port}/sample.mp4", proc, timeout_s=120)
        else:
            deadline = time.monotonic() + 60
            while not list(temp.glob("mediatasks-sample-*/*")):  # FFmpeg has begun writing
                assert proc.popen.poll() is None and time.monotonic() < deadline, proc.log()
                time.sleep(0.05)
        [folder] = temp.glob("mediatasks-sample-*")
    finally:
        returncode = proc.stop()
    assert returncode != -signal.SIGTERM and returncode != -signal.SIGKILL, proc.log()
    if stopped == "while serving":
        assert returncode == 0, proc.log()  # as after Ctrl-C
    assert not folder.exists(), proc.log()
    assert list(temp.iterdir()) == []


def test_upload_survives_a_cut_connection_and_an_interrupted_command(
    server: processes.Server, user: dict[str, str], tmp_path: Path
) -> None:
    source = mediagen.make_video(tmp_path / "big.mp4", seconds=8, width=1280, height=720)
    size = source.stat().st_size
    assert size > 1_000_000
    port = int(server.base_url.rsplit(":", 1)[1])
    elsewhere = Path(user["HOME"]) / "elsewhere"
    with tcpproxy.proxy("127.0.0.1", port) as proxy:
        via = f"http://{proxy.url_host}"
        logged = cli("login", "--server", via, "--api-key", server.key, env=user, cwd=elsewhere)
        assert logged.returncode == 0, logged.stderr
        assert (
            Path(user["XDG_CONFIG_HOME"]) / "mediatasks" / "config.json"
        ).stat().st_mode & 0o77 == 0

        # 1. The connection is cut in the middle of the file: the command goes on from where
        #    the server got to, and follows the task to its end.
        upload = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mediatasks",
                "asset",
                "upload",
                str(source),
                "--name",
                "cut",
                "--chunk-size",
                "65536",
                "--watch",
                "--json",
            ],
            env={**os.environ, **user},
            cwd=elsewhere,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proxy.when_up(size * 6 // 10).wait(60)
        proxy.cut()
        stdout, stderr = upload.communicate(timeout=180)
        assert upload.returncode == 0, stdout + stderr
        final = json.loads(stdout)
        assert final["status"]["phase"] == "completed", final
        assert "kB" in stderr or "MB" in stderr  # the progress bar: bytes and rate
        assert "connection lost after" in stdout + stderr and "resuming" in stdout + stderr
        sent = proxy.bytes_up
        assert size < sent < size * 1.35, (sent, size)  # resumed, not started over

        asset_id = final["outputAssetId"]
        asset = parsed(cli("asset", "get", asset_id, "--json", env=user, cwd=elsewhere))
        assert asset["status"]["phase"] == "ready"
        download = httpx.get(asset["downloadUrl"], timeout=30)
        assert (
            hashlib.sha256(download.content).digest()
            == hashlib.sha256(source.read_bytes()).digest()
        )

        # 2. The command itself is interrupted: the same command again resumes the file.
        second = tmp_path / "second.mp4"
        second.write_bytes(source.read_bytes())
        before = proxy.bytes_up
        command = ["asset", "upload", str(second), "--name", "again", "--chunk-size", "65536"]
        killed = subprocess.Popen(
            [sys.executable, "-m", "mediatasks", *command],
            env={**os.environ, **user},
            cwd=elsewhere,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert proxy.when_up(before + size // 2).wait(60)
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        resumed = cli(*command, env=user, cwd=elsewhere)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "uploaded (resumed)" in resumed.stdout
        assert proxy.bytes_up - before < size * 1.35
        again_task = resumed.stdout.split("task ")[-1].split()[0]
        watched = parsed(cli("task", "watch", again_task, "--json", env=user, cwd=elsewhere))
        assert watched["status"]["phase"] == "completed"

        listed = parsed(cli("asset", "list", "--json", env=user, cwd=elsewhere))
        assert {a["name"] for a in listed} >= {"cut", "again"}
    assert not (elsewhere / "data").exists()


def test_imports_scores_and_every_task_listed_whole(
    server: processes.Server, user: dict[str, str], tmp_path: Path
) -> None:
    elsewhere = Path(user["HOME"]) / "elsewhere"
    env = {**user, "MEDIATASKS_SERVER_URL": server.base_url, "MEDIATASKS_API_KEY": server.key}
    sources = tmp_path / "sources"
    sources.mkdir()
    mediagen.make_video(sources / "clip.mp4", seconds=1)
    with processes.file_server(sources) as files:
        imported = parsed(
            cli("asset", "import", f"{files}/clip.mp4", "--watch", "--json", env=env, cwd=elsewhere)
        )
    assert imported["status"]["phase"] == "completed"
    upload_id, asset_id = imported["id"], imported["outputAssetId"]

    score_file = elsewhere / "song.musicxml"
    score_file.write_text(scoregen.musicxml(measures=2))
    score = parsed(cli("score", "import", str(score_file), "--json", env=env, cwd=elsewhere))
    midi_file = elsewhere / "tune.mid"
    midi_file.write_bytes(scoregen.midi_bytes())
    midi_score = parsed(cli("score", "import", str(midi_file), "--json", env=env, cwd=elsewhere))
    assert [p["id"] for p in midi_score["parts"]] == ["P1"]
    out = elsewhere / "song.mp3"
    exported = cli(
        "score",
        "export",
        score["id"],
        "--format",
        "mp3",
        "--output",
        str(out),
        "--json",
        env=env,
        cwd=elsewhere,
    )
    final = parsed(exported)
    assert final["state"] == "done" and out.read_bytes()[:3] in (b"ID3", b"\xff\xfb")
    export_id = final["id"]

    both = parsed(cli("task", "list", "--json", env=env, cwd=elsewhere))
    assert [t["id"] for t in both["livepeer"]] == [upload_id]
    assert [t["id"] for t in both["flat"]] == [export_id]
    only_flat = parsed(cli("task", "list", "--type", "audio-export", "--json", env=env))
    assert only_flat["livepeer"] == [] and [t["id"] for t in only_flat["flat"]] == [export_id]
    running = parsed(cli("task", "list", "--phase", "running", "--json", env=env))
    assert running == {"livepeer": [], "flat": []}
    assert parsed(cli("task", "get", export_id, env=env))["type"] == "audio-export"

    # In 80 columns, ids are whole: the task's, and its asset's.
    table = cli("task", "list", "--phase", "completed", env=env, columns=80)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "TYPE", "PHASE", "PROGRESS", "CREATED", "ASSET", "ERROR"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows[upload_id][1:3] == ["upload", "completed"] and rows[upload_id][-1] == asset_id
    assert rows[export_id][1:3] == ["audio-export", "completed"]
    assert rows[export_id][-1] == score["id"]
    assert "…" not in table.stdout

    assert parsed(cli("webhook", "list", "--json", env=env)) == []
    hook = httpx.post(
        f"{server.base_url}/api/webhook",
        json={"name": "h", "url": "https://hooks.example.com/x", "events": ["task.completed"]},
        headers={"Authorization": f"Bearer {server.key}"},
    ).json()
    assert [h["id"] for h in parsed(cli("webhook", "list", "--json", env=env))] == [hook["id"]]
    assert parsed(cli("webhook", "logs", hook["id"], "--json", env=env)) == []

    assert cli("asset", "delete", asset_id, env=env).returncode == 0
    gone = cli("asset", "get", asset_id, env=env)
    assert gone.returncode == 1 and "404" in gone.stderr


def test_commands_without_a_key_say_how_to_get_one(user: dict[str, str]) -> None:
    result = cli("task", "list", env=user)
    assert result.returncode == 1
    assert "no API key for http://127.0.0.1:8000: run `mediatasks login" in result.stderr
    assert "Traceback" not in result.stderr
