"""The README as a new user follows it: its SDK snippets run as printed, and its scaled-shape
recipe, word for word, gives a service that imports a video into a bucket and plays it.

What a test must change is only where its own servers listen: the README's ports (8000, 8001,
9100), its database and its S3 endpoint become free loopback ports, a database of the test's
own and moto's standalone S3 server.  Each substitution is asserted to hit the README's text,
so the README cannot move away from what is tested.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import hlscheck, mediagen, processes, s3server, scoregen
from tests.conftest import IN_CI

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SDK_PYTHON = ROOT / ".venv-sdk" / "bin" / "python"


def block(marker: str) -> str:
    """The fenced code block that follows ``<!-- marker -->`` in the README."""
    found = re.search(rf"<!-- {re.escape(marker)} -->\n```\w*\n(.*?)\n```", README, re.DOTALL)
    assert found, f"the README has no block marked {marker!r}"
    return found.group(1)


def substituted(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in text, f"the README no longer says {old!r}"
        text = text.replace(old, new)
    return text


@pytest.fixture
def sdk_python() -> Path:
    if not SDK_PYTHON.exists():
        if IN_CI:
            raise RuntimeError("the SDK environment is missing: run ./scripts/test")
        pytest.skip("no .venv-sdk: ./scripts/test creates it")
    return SDK_PYTHON


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[str]:
    """``mediatasks sample`` as the README runs it (on a free port); its base URL."""
    port = processes.free_port()
    temp = tmp_path / "sample-tmp"
    temp.mkdir()
    proc = processes.start(
        ["sample", "--port", str(port)], {"TMPDIR": str(temp)}, tmp_path / "sample.log"
    )
    try:
        processes.wait_http(f"http://127.0.0.1:{port}/sample.mp4", proc, timeout_s=120)
        yield f"127.0.0.1:{port}"
    finally:
        proc.stop()
    assert list(temp.iterdir()) == [], "the sample's temporary folder was left behind"


def test_the_sdk_snippets_run_as_printed(sdk_python: Path, sample: str, tmp_path: Path) -> None:
    with processes.serve(tmp_path, allow_private_urls="true") as server:
        host = server.base_url.removeprefix("http://")
        ports = {"127.0.0.1:8000": host, "127.0.0.1:8001": sample}
        env = {**os.environ, "MEDIATASKS_API_KEY": server.key}

        livepeer = tmp_path / "livepeer_snippet.py"
        livepeer.write_text(substituted(block("snippet: livepeer-sdk"), ports))

        # Twice: the second asks for the same URL while the first import runs, and gets the
        # 200 answer (the first import) that the snippet handles too.
        def run_snippet() -> subprocess.Popen[str]:
            return subprocess.Popen(
                [str(sdk_python), str(livepeer)],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )

        first = run_snippet()
        assets = f"{server.base_url}/api/asset"
        deadline = time.monotonic() + 120
        while not httpx.get(assets, headers={"Authorization": f"Bearer {server.key}"}).json():
            assert first.poll() is None and time.monotonic() < deadline, "no import was made"
            time.sleep(0.05)
        runs = [first, run_snippet()]
        outputs = [run.communicate(timeout=240) for run in runs]
        for run, (stdout, stderr) in zip(runs, outputs, strict=True):
            assert run.returncode == 0, stderr
            phase, playback = stdout.split()
            assert phase == "completed"
            assert playback.startswith(f"{server.base_url}/media/asset/")
            assert httpx.get(playback).status_code == 200
        assert outputs[0][0] == outputs[1][0]  # one import, seen by both

        (tmp_path / "song.musicxml").write_text(scoregen.musicxml(measures=2))
        flat = tmp_path / "flat_snippet.py"
        flat.write_text(substituted(block("snippet: flat-sdk"), {"127.0.0.1:8000": host}))
        done = subprocess.run(
            [str(sdk_python), str(flat)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        state, size = done.stdout.split()
        assert state == "done" and int(size) > 10_000


def test_the_refusal_of_a_loopback_source_names_the_setting(tmp_path: Path) -> None:
    with processes.serve(tmp_path, allow_private_urls="false") as server:
        refused = httpx.post(
            f"{server.base_url}/api/asset/upload/url",
            json={"name": "x", "url": "http://127.0.0.1:8001/sample.mp4"},
            headers={"Authorization": f"Bearer {server.key}"},
        )
    assert refused.status_code == 422
    [message] = refused.json()["errors"]
    assert "MEDIATASKS_ALLOW_PRIVATE_URLS=true" in message
    assert "MEDIATASKS_ALLOW_PRIVATE_URLS=true ./scripts/serve" in README  # where Try it needs it


def _exports(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        line = line.split("  #", 1)[0].strip()
        if line:
            assert line.startswith("export "), line
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = value
    return found


def _commands(text: str) -> list[tuple[list[str], bool]]:
    """``(argv, in the background)`` for each line of a shell block."""
    found = []
    for line in text.splitlines():
        line = line.split("  #", 1)[0].strip()
        if line:
            background = line.endswith("&")
            found.append((line.removesuffix("&").split(), background))
    return found


def _samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(url, timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.postgres
def test_the_scaled_shape_recipe_word_for_word(pg_url: str, tmp_path: Path) -> None:
    port, metrics_port = processes.free_port(), processes.free_port()
    sources = tmp_path / "sources"
    sources.mkdir()
    mediagen.make_video(sources / "clip.mp4", seconds=2, width=1280, height=720)
    with (
        s3server.moto_server(tmp_path / "moto.log") as moto,
        processes.file_server(sources) as files,
    ):
        environment = substituted(
            block("recipe: scaled-environment"),
            {
                "postgresql://mediatasks@127.0.0.1:5432/mediatasks": pg_url,
                "http://127.0.0.1:9000": moto.endpoint_url,
                "http://127.0.0.1:8000": f"http://127.0.0.1:{port}",
            },
        )
        env = _exports(environment)
        assert set(env) >= {
            "DATABASE_URL",
            "MEDIATASKS_BLOB_STORE_URL",
            "MEDIATASKS_S3_ACCESS_KEY_ID",
            "MEDIATASKS_S3_SECRET_ACCESS_KEY",
            "MEDIATASKS_PUBLIC_URL",
            "MEDIATASKS_SECRET_KEY",
        }
        # This test's own additions: the API's port, and its source on loopback.
        env |= {"MEDIATASKS_PORT": str(port), "MEDIATASKS_ALLOW_PRIVATE_URLS": "true"}
        commands = _commands(
            substituted(
                block("recipe: scaled-commands"),
                {"--metrics-port 9100": f"--metrics-port {metrics_port}"},
            )
        )
        assert [argv[:2] for argv, _ in commands] == [
            ["mediatasks", "migrate"],
            ["mediatasks", "keys"],
            ["mediatasks", "serve"],
            ["mediatasks", "worker"],
        ]
        key = ""
        running: list[processes.Proc] = []
        try:
            for argv, background in commands:
                if background:
                    running.append(processes.start(argv[1:], env, tmp_path / f"{argv[1]}.log"))
                    continue
                done = subprocess.run(
                    [sys.executable, "-m", "mediatasks", *argv[1:]],
                    env={**os.environ, **env},
                    cwd=tmp_path,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                assert done.returncode == 0, done.stdout + done.stderr
                if argv[1] == "keys":
                    key = done.stdout.strip().splitlines()[-1]
            api_proc, worker_proc = running
            base = f"http://127.0.0.1:{port}"
            processes.wait_http(f"{base}/readyz", api_proc)
            processes.wait_http(f"http://127.0.0.1:{metrics_port}/metrics", worker_proc)
            worker_before = _samples(f"http://127.0.0.1:{metrics_port}/metrics")

            api = httpx.Client(
                base_url=f"{base}/api", headers={"Authorization": f"Bearer {key}"}, timeout=30
            )
            created = api.post(
                "/asset/upload/url", json={"name": "clip", "url": f"{files}/clip.mp4"}
            )
            assert created.status_code == 201, created.text
            asset_id = created.json()["asset"]["id"]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                asset = api.get(f"/asset/{asset_id}").json()
                if asset["status"]["phase"] in ("ready", "failed"):
                    break
                time.sleep(0.2)
            assert asset["status"]["phase"] == "ready", asset

            # In the bucket the recipe names, and played from there through the API.
            bucket, _, prefix = (
                env["MEDIATASKS_BLOB_STORE_URL"].removeprefix("s3://").partition("/")
            )
            keys = moto.keys(bucket)
            playback = asset["playbackId"]
            assert f"{prefix}/asset/{playback}/hls/index.m3u8" in keys
            assert asset["playbackUrl"].startswith(env["MEDIATASKS_PUBLIC_URL"] + "/media/asset/")
            master = hlscheck.mirror(asset["playbackUrl"], tmp_path / "copy")
            assert {r.name for r in hlscheck.renditions(master)} == {"360p0", "720p0"}
            assert not (tmp_path / "data-scaled" / "media").exists()

            # The worker's own metrics moved; the API's count requests and read the queue.
            worker_after = _samples(f"http://127.0.0.1:{metrics_port}/metrics")
            finished = (
                "mediatasks_tasks_finished_total",
                frozenset({("type", "upload"), ("outcome", "completed")}),
            )
            assert worker_after[finished] - worker_before.get(finished, 0) == 1
            speed = ("mediatasks_ffmpeg_speed_ratio_count", frozenset({("type", "upload")}))
            assert worker_after[speed] == 1
            api_metrics = _samples(f"{base}/metrics")
            posted = frozenset(
                {
                    ("dialect", "livepeer"),
                    ("route", "/api/asset/upload/url"),
                    ("method", "POST"),
                    ("status", "201"),
                }
            )
            assert api_metrics[("mediatasks_http_requests_total", posted)] == 1
            assert "# TYPE mediatasks_queue_depth gauge" in httpx.get(f"{base}/metrics").text
            api.close()
        finally:
            for proc in reversed(running):
                proc.stop()

    # MEDIATASKS_LOG_FORMAT=json: every line the worker wrote is one JSON object, and the
    # task's transitions are there with their fields.
    records = [json.loads(line) for line in worker_proc.log().splitlines() if line.strip()]
    mine = [r for r in records if r.get("task_id") and r.get("task_type") == "upload"]
    assert [r["event"] for r in mine] == ["task.claimed", "task.completed"]
    assert mine[-1]["attempt"] == 1 and mine[-1]["duration_s"] > 0 and mine[-1]["worker"]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert env["MEDIATASKS_S3_SECRET_ACCESS_KEY"] not in worker_proc.log()
