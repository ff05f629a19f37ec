"""A new user's first hour: a fresh clone, as a user who is not root, ``./scripts/serve``, and an
MP3 rendered from a score; then a second start, which is quick because nothing changed.

The clone is of this repository's committed ``HEAD``.  Run as root (as CI is), the test drops to
the ``nobody`` user for everything the user does; a ``fluidsynth`` first on ``PATH`` records any
call, to show that audio exports need no system synthesizer.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest

from tests import processes, scoregen

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


@pytest.fixture
def place() -> Iterator[Path]:
    """A folder the unprivileged user owns (pytest's own folders are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="mediatasks-clone-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _as_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *argv]


def _serve(clone: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            _as_user(["./scripts/serve"]),
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {timeout_s} s:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(10)


@pytest.mark.timeout(1200)  # a whole installation from the package index, and its removal
def test_a_fresh_clone_serves_and_renders_an_mp3_without_root(place: Path) -> None:
    clone = place / "mediatasks"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    home = place / "home"
    spy = place / "spy"
    for folder in (home, spy):
        folder.mkdir()
    called = place / "fluidsynth-was-called"
    (spy / "fluidsynth").write_text(f"#!/bin/sh\ntouch {called}\nexit 1\n")
    (spy / "fluidsynth").chmod(0o755)
    # The user reaches the package index as this machine's own user does.
    pip_conf = Path.home() / ".config" / "pip" / "pip.conf"
    if pip_conf.is_file():
        (home / ".config" / "pip").mkdir(parents=True)
        shutil.copy(pip_conf, home / ".config" / "pip" / "pip.conf")
    npmrc = Path.home() / ".npmrc"  # and the npm registry (the dashboard's browser libraries)
    if npmrc.is_file():
        shutil.copy(npmrc, home / ".npmrc")
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(place)], check=True)
    port = processes.free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MEDIATASKS_", "VIRTUAL_ENV", "PYTHON"))
    }
    env |= {
        "HOME": str(home),
        "PATH": f"{spy}:{env.get('PATH', '/usr/bin:/bin')}",
        "MEDIATASKS_PORT": str(port),
    }
    base = f"http://127.0.0.1:{port}"
    log = place / "serve.log"

    first = _serve(clone, env, log)
    try:
        _wait(f"{base}/healthz", first, log, timeout_s=900)
        key = (clone / "data" / "bootstrap-api-key").read_text().strip()
        sign_in = httpx.get(f"{base}/sign-in", timeout=30)
        assert sign_in.status_code == 200
        assert "Missing browser libraries" not in sign_in.text  # installed by the set-up
        assert httpx.get(f"{base}/static/vendor/htmx.org/htmx.min.js").status_code == 200
        flat = httpx.Client(
            base_url=f"{base}/v2", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        score = flat.post(
            "/scores", json={"data": scoregen.musicxml(measures=3), "filename": "s.musicxml"}
        ).json()
        task = flat.post(f"/scores/{score['id']}/revisions/last/mp3/task").json()
        deadline = time.monotonic() + 120
        while task["state"] not in ("done", "error", "canceled") and time.monotonic() < deadline:
            time.sleep(0.2)
            task = flat.get(f"/tasks/{task['id']}").json()
        assert task["state"] == "done", task
        mp3 = httpx.get(task["result"]["url"], timeout=30).content
        flat.close()
    finally:
        _stop(first)
    with av.open(io.BytesIO(mp3)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name.startswith("mp3")
        samples = sum(frame.samples for frame in container.decode(stream))
    assert abs(samples / stream.rate - 6.25) < 0.1  # 3 bars of 4/4 at 120 qpm, and the release
    assert not called.exists()
    owner = (clone / ".venv").stat().st_uid
    assert owner == (NOBODY if os.geteuid() == 0 else os.geteuid())

    # Nothing changed: the second start skips the installation.
    second = _serve(clone, env, log)
    try:
        took_s = _wait(f"{base}/healthz", second, log, timeout_s=120)
    finally:
        _stop(second)
    print(f"second start answered after {took_s:.1f} s")
    assert took_s < 10, took_s
