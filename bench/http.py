"""HTTP benchmark: ``GET /api/task/{id}`` and ``GET /api/task`` of a real ``mediatasks serve``,
next to a bare ASGI app that serves the same bytes on the same uvicorn settings.

Run it from the repository root (it needs ``wrk``: ``apt-get install wrk`` on Debian)::

    .venv/bin/python bench/http.py
    .venv/bin/python bench/http.py --connections 64 --duration-s 30 --repeat 3
    .venv/bin/python bench/http.py --help

What it does, in one run:

1. Seeds a fresh task store (SQLite in a temporary folder, or ``--database-url``): the
   bootstrap project and key, and ``--tasks`` upload tasks of imported assets, completed with
   the media an upload records (renditions, size, hash, video spec), so that every task renders
   with its asset snapshot as a real one does.
2. Starts ``python -m mediatasks serve`` on 127.0.0.1 (with its embedded worker, idle: every
   task is completed), and reads the two answers once, checking that they are 200.
3. Starts a bare ASGI app (in a process of its own, ``--serve-bare``) that answers those exact
   bytes, with the same headers, under the same uvicorn options ``mediatasks serve`` uses
   (``cli.uvicorn_options``).
4. Runs ``wrk`` against each of the four targets in turn, ``--repeat`` rounds, for
   ``--duration-s`` each, with ``--connections`` connections, printing the load average before
   each run; then a markdown table of requests/s, p50 and p99 (medians over the rounds) and the
   ratios of mediatasks to the bare app.

Why wrk: the load generator shares the machine's cores with the server it measures, so it must
cost as little per request as possible.  wrk (C, epoll) spends a few microseconds of CPU per
request; a Python generator spends tens, which on two cores takes CPU from the server and caps
what can be measured, the bare app first.  wrk's ``--latency`` gives the percentiles.

Everything is bounded: each wrk run stops after ``--duration-s`` (and is killed 30 s later if
it has not), only 127.0.0.1 is used, and the servers and the temporary folder are removed at
the end, also on Ctrl-C.  The exit status is 1 if a run saw a non-2xx answer; socket errors
(wrk's 5 s timeouts, on a busy machine) are counted in the table.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path, and this file, being called
# http.py, would hide the standard library's ``http`` (which httpx and uvicorn import).
if sys.path and os.path.realpath(sys.path[0] or ".") == os.path.dirname(os.path.realpath(__file__)):
    sys.path.pop(0)

import argparse
import asyncio
import contextlib
import dataclasses
import json
import platform
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import httpx

import mediatasks
from mediatasks import cli, service, tasks, taskstore
from mediatasks import settings as settings_module

HOST = "127.0.0.1"
#: The targets, in the order of a round.
TARGETS = ("one", "bare one", "list", "bare list")
#: Headers of the real answer that the bare app does not copy (uvicorn writes its own).
_OWN_HEADERS = frozenset({"date", "server", "content-length"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Run:
    """One wrk run."""

    target: str
    load_before: tuple[float, float, float]
    requests_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    #: CPU time (user + system) the server process spent per request answered, in µs.
    cpu_us: float
    #: Non-2xx answers: a run with any is not a measurement (the exit status is 1).
    bad: int
    #: Socket errors, timeouts (no answer within 5 s) included; counted, not failed.
    socket_errors: int


# -- seeding -------------------------------------------------------------------------------------
async def seed(settings: settings_module.Settings, count: int) -> tuple[str, str]:
    """Create the bootstrap key and ``count`` completed upload tasks; the key and a task id."""
    store = taskstore.open_task_store(settings.resolved_database_url)
    try:
        await store.migrate()
        boot = await service.bootstrap_key(store, service.bootstrap_key_path(settings))
        assert boot is not None, "the benchmark's store is new: it gets a bootstrap key"
        last = ""
        for n in range(count):
            _, task, _ = await service.import_from_url(
                store,
                settings,
                project_id=boot.project_id,
                name=f"video {n}.mp4",
                url=f"http://{HOST}:9/video-{n}.mp4",
                options={},
            )
            claimed = await store.claim(
                "bench-seed", types=[tasks.TaskType.UPLOAD], limit=1, lease_s=60
            )
            assert [found.id for found in claimed] == [task.id]
            await store.complete(
                task.id,
                claimed[0].lease_token or "",
                output={"upload": {}},
                asset_media=_media(str(task.output_asset_id), n),
            )
            last = task.id
        return boot.secret, last
    finally:
        await store.close()


def _media(asset_id: str, n: int) -> dict[str, Any]:
    """What the upload handler records for a 10 s 1080p source with the default ladder."""
    prefix = f"assets/{asset_id}"
    renditions = [
        {"name": name, "width": w, "height": h, "bitrate": rate, "fps": 30}
        for name, w, h, rate in (
            ("360p0", 640, 360, 1_000_000),
            ("720p0", 1280, 720, 4_000_000),
            ("1080p0", 1920, 1080, 6_000_000),
        )
    ]
    return {
        "renditions": renditions,
        "prefix": prefix,
        "hls": f"{prefix}/hls/index.m3u8",
        "size": 12_345_678 + n,
        "hash": [{"hash": f"{n:064x}", "algorithm": "sha256"}],
        "videoSpec": {
            "format": "mp4",
            "duration": 10.0,
            "bitrate": 9_876_543,
            "tracks": [
                {
                    "type": "video",
                    "codec": "h264",
                    "width": 1920,
                    "height": 1080,
                    "fps": 30,
                    "bitrate": 9_000_000,
                },
                {"type": "audio", "codec": "aac", "channels": 2, "sampleRate": 48000},
            ],
        },
        "source": f"{prefix}/video",
    }


# -- the servers ---------------------------------------------------------------------------------
def _wait_http(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    sys.exit(f"{url} did not answer within {timeout_s} s:\n{log_path.read_text()[-3000:]}")


@contextlib.contextmanager
def server(
    args: Sequence[str], env: dict[str, str], log_path: Path, ready_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, stopped (SIGTERM, then SIGKILL after 15 s) when the block ends."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, *args], env={**os.environ, **env}, stdout=log, stderr=log
        )
    try:
        _wait_http(ready_url, proc, log_path, timeout_s=60)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


def bare_app(
    answers: dict[str, tuple[bytes, list[tuple[bytes, bytes]]]],
) -> Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Any]:
    """An ASGI app that answers each path with its bytes and headers, and nothing else."""

    async def app(
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body, headers = answers.get(scope["path"], (b"", []))
        status = 200 if body else 404
        length = (b"content-length", str(len(body)).encode())
        await send({"type": "http.response.start", "status": status, "headers": [*headers, length]})
        await send({"type": "http.response.body", "body": body})

    return app


def serve_bare(spec_path: Path, port: int) -> None:
    """The ``--serve-bare`` mode: the bare app, as ``mediatasks serve`` runs uvicorn."""
    import uvicorn

    spec = json.loads(spec_path.read_text())
    answers = {
        path: (
            bytes.fromhex(entry["body"]),
            [(name.encode(), value.encode()) for name, value in entry["headers"]],
        )
        for path, entry in spec.items()
    }
    settings = settings_module.Settings(host=HOST, port=port)
    uvicorn.run(bare_app(answers), **cli.uvicorn_options(settings))


# -- wrk -----------------------------------------------------------------------------------------
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(found[1]) * _UNITS_MS[found[2]]


def cpu_s(pid: int) -> float:
    """The CPU time (user + system, all threads) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(target: str, url: str, key: str, pid: int, args: argparse.Namespace) -> Run:
    """One bounded wrk run against ``url``, served by process ``pid``."""
    load = os.getloadavg()
    cpu_before = cpu_s(pid)
    argv = [
        args.wrk,
        f"--threads={args.threads}",
        f"--connections={args.connections}",
        f"--duration={args.duration_s}s",
        "--timeout=5s",
        "--latency",
        "--header",
        f"Authorization: Bearer {key}",
        url,
    ]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=args.duration_s + 30, check=True
    )
    cpu_used = cpu_s(pid) - cpu_before
    out = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    if not (rate and total and p50 and p99):
        sys.exit(f"cannot read wrk's output:\n{out}\n{done.stderr}")
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_line = re.search(r"Socket errors: (.*)", out)
    socket_errors = sum(int(n) for n in re.findall(r"\d+", socket_line[1])) if socket_line else 0
    return Run(
        target=target,
        load_before=load,
        requests_s=float(rate[1]),
        p50_ms=_ms(p50[1]),
        p99_ms=_ms(p99[1]),
        requests=int(total[1]),
        cpu_us=cpu_used / max(1, int(total[1])) * 1e6,
        bad=bad,
        socket_errors=socket_errors,
    )


# -- the run -------------------------------------------------------------------------------------
def _answer(url: str, key: str) -> tuple[bytes, list[tuple[str, str]]]:
    found = httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    if found.status_code != 200:
        sys.exit(f"GET {url} answered {found.status_code}: {found.text[:300]}")
    kept = [(k, v) for k, v in found.headers.items() if k.lower() not in _OWN_HEADERS]
    return found.content, kept


def run(args: argparse.Namespace, tmp: Path) -> list[Run]:
    data_dir = tmp / "data"
    settings = settings_module.Settings(
        data_dir=data_dir, database_url=args.database_url, allow_private_urls=True
    )
    key, task_id = asyncio.run(seed(settings, args.tasks))
    port, bare_port = free_port(), free_port()
    env = {
        "MEDIATASKS_DATA_DIR": str(data_dir),
        "MEDIATASKS_DATABASE_URL": args.database_url,
        "MEDIATASKS_HOST": HOST,
        "MEDIATASKS_PORT": str(port),
    }
    base = f"http://{HOST}:{port}"
    one_path, list_path = f"/api/task/{task_id}", "/api/task"
    list_query = f"?limit={args.page}"
    serve_args = ["-m", "mediatasks", "serve"]
    with server(serve_args, env, tmp / "serve.log", f"{base}/healthz") as served:
        one_body, one_headers = _answer(base + one_path, key)
        list_body, list_headers = _answer(base + list_path + list_query, key)
        if len(json.loads(list_body)) != min(args.page, args.tasks):
            sys.exit(f"the list page does not hold {args.page} tasks")
        spec = {
            one_path: {"body": one_body.hex(), "headers": one_headers},
            list_path: {"body": list_body.hex(), "headers": list_headers},
        }
        spec_path = tmp / "bare.json"
        spec_path.write_text(json.dumps(spec))
        bare_base = f"http://{HOST}:{bare_port}"
        bare_args = [os.path.realpath(__file__), "--serve-bare", str(spec_path), str(bare_port)]
        with server(bare_args, {}, tmp / "bare.log", bare_base + one_path) as bare:
            urls = {
                "one": base + one_path,
                "bare one": bare_base + one_path,
                "list": base + list_path + list_query,
                "bare list": bare_base + list_path + list_query,
            }
            print(
                f"one task: {len(one_body)} bytes; a page of {args.page}: {len(list_body)} bytes",
                file=sys.stderr,
            )
            pids = {"one": served.pid, "list": served.pid, "bare one": bare.pid}
            pids["bare list"] = bare.pid
            runs: list[Run] = []
            for round_n in range(args.repeat):
                for target in TARGETS:
                    found = wrk(target, urls[target], key, pids[target], args)
                    load = " / ".join(f"{x:.2f}" for x in found.load_before)
                    print(
                        f"round {round_n + 1} {target:>9}: load {load} before; "
                        f"{found.requests_s:,.0f} req/s, p50 {found.p50_ms:.2f} ms, "
                        f"p99 {found.p99_ms:.2f} ms, {found.cpu_us:.0f} µs CPU a request, "
                        f"{found.bad} non-2xx, {found.socket_errors} socket errors",
                        file=sys.stderr,
                    )
                    runs.append(found)
    return runs


def report(runs: Sequence[Run], args: argparse.Namespace) -> None:
    """The markdown tables of the runs."""
    store = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
    print(
        f"\n`bench/http.py`, mediatasks {mediatasks.__version__}, Python "
        f"{platform.python_version()}, {os.cpu_count()} cores, {store}; wrk "
        f"{args.threads} thread(s), {args.connections} connections, {args.duration_s} s a run, "
        f"{args.repeat} round(s)\n"
    )
    print(
        "| round | target | load average before | req/s | p50 (ms) | p99 (ms) "
        "| server CPU a request (µs) | non-2xx | socket errors, timeouts |"
    )
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, found in enumerate(runs):
        load = " / ".join(f"{x:.2f}" for x in found.load_before)
        print(
            f"| {n // len(TARGETS) + 1} | {found.target} | {load} | {found.requests_s:,.0f} | "
            f"{found.p50_ms:.2f} | {found.p99_ms:.2f} | {found.cpu_us:.0f} | {found.bad} "
            f"| {found.socket_errors} |"
        )

    def median(target: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in runs if r.target == target)

    print(
        "\n| what | mediatasks req/s | bare app req/s | ratio | mediatasks CPU a request (µs) "
        "| bare app CPU a request (µs) | CPU ratio (bare / mediatasks) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    named = (("`GET /api/task/{id}`", "one"), (f"`GET /api/task` ({args.page} a page)", "list"))
    for name, target in named:
        rate, bare_rate = median(target, "requests_s"), median(f"bare {target}", "requests_s")
        cpu, bare_cpu = median(target, "cpu_us"), median(f"bare {target}", "cpu_us")
        print(
            f"| {name} | {rate:,.0f} | {bare_rate:,.0f} | {rate / bare_rate:.2f} | {cpu:.0f} "
            f"| {bare_cpu:.0f} | {bare_cpu / cpu:.2f} |"
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--connections", type=int, default=32, help="open connections")
    parser.add_argument("--duration-s", type=int, default=15, help="seconds of each wrk run")
    parser.add_argument("--threads", type=int, default=1, help="wrk's threads")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the four targets")
    parser.add_argument("--tasks", type=int, default=200, help="completed tasks seeded")
    parser.add_argument("--page", type=int, default=20, help="tasks in the list page")
    parser.add_argument(
        "--database-url",
        default="",
        help="the task store (a PostgreSQL URL; its database must be empty); default: SQLite "
        "in a temporary folder",
    )
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="the wrk command")
    parser.add_argument("--serve-bare", nargs=2, metavar=("SPEC", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.duration_s <= 600 or not 1 <= args.connections <= 1024:
        parser.error("--duration-s is 1 to 600 and --connections 1 to 1024")
    if not 1 <= args.repeat <= 10:
        parser.error("--repeat is 1 to 10")
    return args


def main() -> None:
    args = parse_args()
    if args.serve_bare:
        serve_bare(Path(args.serve_bare[0]), int(args.serve_bare[1]))
        return
    if shutil.which(args.wrk) is None:
        sys.exit("wrk is not installed: apt-get install wrk (Debian), or --wrk PATH")
    tmp = Path(tempfile.mkdtemp(prefix="mt-bench-http-"))
    try:
        runs = run(args, tmp)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(runs, args)
    if any(found.bad for found in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
