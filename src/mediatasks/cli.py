"""The ``mediatasks`` command.

On this machine's stores: ``serve`` runs the HTTP service (and, unless ``--no-worker``, a worker
in the same process); ``worker`` runs a worker alone; ``migrate`` upgrades the task store;
``keys`` manages API keys directly in the task store; ``sample`` makes a video and serves it on
loopback, to try the service offline.

On a running server, over HTTP with an API key as any client would (``client`` says where the
server and key come from): ``login``, ``task``, ``asset``, ``webhook`` and ``score``.  Every
command that reads takes ``--json`` and then prints the server's JSON as it came.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import http.server
import importlib.util
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import httpx
import typer
import uvicorn
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from mediatasks import __version__, client, errors, health, service, taskstore, telemetry
from mediatasks import settings as settings_module
from mediatasks.api import runtime as runtime_module
from mediatasks.media import sample
from mediatasks.webhooks import sender
from mediatasks.worker import handlers, loop

__all__ = ["main"]

_F = TypeVar("_F", bound=Callable[..., Any])

cli = typer.Typer(help="mediatasks: a self-hosted asynchronous media task service.")
keys_cli = typer.Typer(help="Manage API keys (directly in this machine's task store).")
task_cli = typer.Typer(help="Follow and steer tasks on a running server.")
asset_cli = typer.Typer(help="Import, upload and manage assets on a running server.")
webhook_cli = typer.Typer(help="Webhooks of a running server and their delivery logs.")
score_cli = typer.Typer(help="Flat's scores on a running server: import, export to audio.")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(task_cli, name="task")
cli.add_typer(asset_cli, name="asset")
cli.add_typer(webhook_cli, name="webhook")
cli.add_typer(score_cli, name="score")

console = Console(soft_wrap=True)
errors_out = Console(stderr=True, soft_wrap=True)

TERMINAL = frozenset({"completed", "failed", "cancelled"})
#: Flat's task states, in this service's phase words (an audio export is never ``pending``).
FLAT_PHASES = {
    "created": "waiting",
    "doing": "running",
    "done": "completed",
    "error": "failed",
    "canceled": "cancelled",
}
FLAT_STATES = {phase: state for state, phase in FLAT_PHASES.items()}

DataDir = typer.Option(None, "--data-dir", envvar="MEDIATASKS_DATA_DIR", help="Data folder.")
DatabaseUrl = typer.Option(
    None,
    "--database-url",
    envvar=["MEDIATASKS_DATABASE_URL", "DATABASE_URL"],
    help="sqlite:///file or postgresql://... (default: SQLite in the data folder).",
)
Concurrency = typer.Option(
    None, "--concurrency", envvar="MEDIATASKS_CONCURRENCY", help="Tasks run at once."
)
CreateBucket = typer.Option(
    None,
    "--create-bucket",
    envvar="MEDIATASKS_S3_CREATE_BUCKET",
    help="Create the media bucket if it does not exist (else a missing bucket stops start-up).",
)
ServerUrl = typer.Option(
    None,
    "--server",
    envvar="MEDIATASKS_SERVER_URL",
    help=f"Server URL (default: the one `mediatasks login` kept, else {client.DEFAULT_SERVER}).",
)
ApiKey = typer.Option(
    None,
    "--api-key",
    envvar="MEDIATASKS_API_KEY",
    help="API key (default: the one `mediatasks login` kept for that server).",
)
AsJson = typer.Option(False, "--json", help="Print the server's JSON answer.")
Watch = typer.Option(False, "--watch", help="Follow the task with a progress bar until it ends.")


def _settings(**overrides: Any) -> settings_module.Settings:
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return settings_module.Settings(**given)
    except (errors.ConfigurationError, ValueError) as exc:
        _fail(f"invalid settings: {exc}", code=2)


def _fail(message: str, *, code: int = 1) -> NoReturn:
    """One line on stderr and an exit status: no traceback for what the user can fix."""
    errors_out.print(f"[red]mediatasks:[/] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def _columns(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Aligned columns, never cut: an id is printed whole whatever the terminal's width."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    for line in [headers, *rows]:
        cells = (cell.ljust(w) for cell, w in zip(line, widths, strict=True))
        sys.stdout.write("  ".join(cells).rstrip())
        sys.stdout.write("\n")


def _time(value: Any) -> str:
    """Unix milliseconds or an ISO 8601 string, as local time to the second."""
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value / 1000).astimezone()
    elif isinstance(value, str) and value:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone()
    else:
        return ""
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _calls(fn: _F) -> _F:
    """A command that talks to a server: its failures become one line and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except client.CallFailed as exc:
            _fail(exc.message)

    return wrapper  # type: ignore[return-value]


def _api(server: str | None, api_key: str | None) -> client.Api:
    return client.Api(client.resolve(server, api_key))


# -- the service --------------------------------------------------------------------------------
@cli.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


def _start(settings: settings_module.Settings) -> service.Bootstrap | None:
    """Check and migrate the stores before serving; a failure is one line and exit status 1."""

    async def prepare() -> service.Bootstrap | None:
        runtime = runtime_module.open_runtime(settings)
        try:
            await health.preflight(settings, runtime.store, runtime.blobs)
            return await service.bootstrap_key(runtime.store, service.bootstrap_key_path(settings))
        finally:
            await runtime.blobs.close()
            await runtime.store.close()

    try:
        return asyncio.run(prepare())
    except health.StartupError as exc:
        _fail(f"cannot start: {exc}")
    except errors.MediaTasksError as exc:
        _fail(f"cannot start: {exc.message}")


@cli.command()
def serve(
    host: str = typer.Option(None, "--host", envvar="MEDIATASKS_HOST", help="Address to bind."),
    port: int = typer.Option(None, "--port", envvar="MEDIATASKS_PORT", help="Port to bind."),
    data_dir: Path = DataDir,
    database_url: str = DatabaseUrl,
    concurrency: int = Concurrency,
    create_bucket: bool = CreateBucket,
    no_worker: bool = typer.Option(
        False, "--no-worker", help="Serve HTTP only; workers run elsewhere (scaled shape)."
    ),
) -> None:
    """Run the HTTP service, with a worker unless --no-worker."""
    settings = _settings(
        host=host,
        port=port,
        data_dir=data_dir,
        database_url=database_url,
        concurrency=concurrency,
        s3_create_bucket=create_bucket,
    )
    telemetry.configure_logging(settings.log_format, settings.log_level)
    boot = _start(settings)
    base = f"http://{settings.host}:{settings.port}"
    console.print(f"[bold]mediatasks {__version__}[/] on {base}")
    console.print(f"  Livepeer API: {base}/api    Flat API: {base}/v2    docs: {base}/docs")
    console.print(f"  metrics: {base}/metrics    health: {base}/healthz, {base}/readyz")
    if boot is not None:
        console.print(f"  API key: [bold green]{boot.secret}[/]", soft_wrap=True)
        console.print(f"  (kept in {service.bootstrap_key_path(settings)})", soft_wrap=True)
    else:
        console.print("  API keys: mediatasks keys create")
    from mediatasks import app  # the HTTP application: only ``serve`` needs it

    uvicorn.run(app.create_app(settings, with_worker=not no_worker), **uvicorn_options(settings))


def uvicorn_options(settings: settings_module.Settings) -> dict[str, Any]:
    """How ``serve`` runs uvicorn (``bench/http.py`` runs its bare app the same way)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "http": "httptools",
        # HttpMetrics writes the request lines: cheaper, and without their query strings.
        "access_log": False,
        "log_config": None,
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": int(settings.shutdown_grace_s) + 5,
    }


@cli.command()
def worker(
    data_dir: Path = DataDir,
    database_url: str = DatabaseUrl,
    concurrency: int = Concurrency,
    create_bucket: bool = CreateBucket,
    metrics_port: int = typer.Option(
        None,
        "--metrics-port",
        envvar="MEDIATASKS_METRICS_PORT",
        help="Serve this worker's Prometheus metrics at http://HOST:PORT/metrics (HOST: "
        "MEDIATASKS_HOST).",
    ),
) -> None:
    """Run a worker: claim and run tasks until SIGTERM or SIGINT."""
    settings = _settings(
        data_dir=data_dir,
        database_url=database_url,
        concurrency=concurrency,
        s3_create_bucket=create_bucket,
        metrics_port=metrics_port,
    )
    telemetry.configure_logging(settings.log_format, settings.log_level)
    _start(settings)

    async def run() -> None:
        runtime = runtime_module.open_runtime(settings)
        runner = loop.Worker(settings, runtime.store, runtime.blobs, handlers.registry())
        hooks = sender.Sender(settings, runtime.store)
        event_loop = asyncio.get_running_loop()

        def stop() -> None:
            runner.stop()
            hooks.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            event_loop.add_signal_handler(sig, stop)
        try:
            await asyncio.gather(runner.run(), hooks.run())
        finally:
            await runtime.blobs.close()
            await runtime.store.close()

    with _metrics_server(settings):
        asyncio.run(run())


@contextlib.contextmanager
def _metrics_server(settings: settings_module.Settings) -> Iterator[None]:
    """prometheus-client's own HTTP server for a worker's metrics, in a thread."""
    if not settings.metrics_port:
        yield
        return
    from prometheus_client import exposition

    try:
        server, thread = exposition.start_http_server(
            settings.metrics_port, addr=settings.host, registry=telemetry.REGISTRY
        )
    except OSError as exc:
        _fail(f"cannot serve metrics on {settings.host}:{settings.metrics_port}: {exc}")
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@cli.command()
def migrate(data_dir: Path = DataDir, database_url: str = DatabaseUrl) -> None:
    """Create or upgrade the task store's schema."""
    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def run() -> list[int]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = taskstore.open_task_store(settings.resolved_database_url)
        try:
            return await store.migrate()
        finally:
            await store.close()

    try:
        applied = asyncio.run(run())
    except errors.MediaTasksError as exc:
        _fail(exc.message)
    console.print(f"applied migrations: {applied}" if applied else "schema is up to date")


@cli.command("sample")
def sample_video(
    port: int = typer.Option(8001, "--port", help="Port of the file server on 127.0.0.1."),
    seconds: float = typer.Option(10.0, "--seconds", help="How long the video plays."),
    folder: Path = typer.Option(
        None, "--folder", help="Keep the video here (default: a temporary folder)."
    ),
) -> None:
    """Make a sample video (FFmpeg's test card and a tone) and serve it on loopback.

    The service refuses loopback URLs unless it runs with MEDIATASKS_ALLOW_PRIVATE_URLS=true.
    """
    with _sigterm_as_interrupt():
        target = folder or Path(tempfile.mkdtemp(prefix="mediatasks-sample-"))
        try:
            _make_and_serve_sample(target, port=port, seconds=seconds)
        finally:
            if folder is None:
                shutil.rmtree(target, ignore_errors=True)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the command as Ctrl-C does: by raising ``KeyboardInterrupt``.

    Python's default for SIGTERM is to die on the spot, running no ``finally``; a foreground
    command that a process manager (or a test) stops with SIGTERM must clean up all the same.
    """

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _make_and_serve_sample(target: Path, *, port: int, seconds: float) -> None:
    """Write ``target/sample.mp4`` and serve ``target`` until interrupted."""
    video = target / "sample.mp4"
    try:
        asyncio.run(sample.make_sample(video, seconds=seconds))
    except errors.MediaTasksError as exc:
        _fail(f"cannot make the sample: {exc.message}")

    def handler(*args: Any, **kwargs: Any) -> http.server.SimpleHTTPRequestHandler:
        return http.server.SimpleHTTPRequestHandler(*args, directory=str(target), **kwargs)

    try:
        files = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        _fail(f"cannot serve on 127.0.0.1:{port}: {exc}")
    console.print(f"serving http://127.0.0.1:{port}/sample.mp4 ({seconds:g} s); Ctrl-C stops")
    console.print("  (the service imports it when started with MEDIATASKS_ALLOW_PRIVATE_URLS=true)")
    try:
        files.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        files.server_close()


# -- keys -------------------------------------------------------------------------------------
def _local_store(settings: settings_module.Settings, fn: Any) -> Any:
    """Run ``fn(store)`` on this machine's task store, which must exist already."""
    if not settings.database_url:
        path = settings.data_dir / "mediatasks.db"
        if not path.is_file():
            _fail(
                f"no task store at {path.resolve()}: start `mediatasks serve` there first, "
                "or point MEDIATASKS_DATA_DIR (or MEDIATASKS_DATABASE_URL) at the service's"
            )

    async def run() -> Any:
        store = taskstore.open_task_store(settings.resolved_database_url)
        try:
            await store.migrate()
            return await fn(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except errors.NotFound as exc:
        _fail(exc.message)
    except errors.MediaTasksError as exc:
        _fail(f"the task store cannot be used: {exc.message}")


@keys_cli.command("create")
def keys_create(
    name: str = typer.Option("cli", "--name", help="A label for the key."),
    project: str = typer.Option(
        None, "--project", help="Project id or name (default: the first; created if none)."
    ),
    new_project: bool = typer.Option(False, "--new-project", help="Create a new project."),
    data_dir: Path = DataDir,
    database_url: str = DatabaseUrl,
) -> None:
    """Create an API key and print its secret (shown only once)."""
    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def run(store: taskstore.TaskStore) -> tuple[taskstore.ApiKey, str]:
        projects = await store.list_projects()
        chosen = next((p for p in projects if project in {p.id, p.name}), None)
        if new_project or (chosen is None and (project is not None or not projects)):
            chosen = await store.create_project(project or name)
        elif chosen is None:
            chosen = projects[0]
        return await store.create_api_key(chosen.id, name)

    key, secret = _local_store(settings, run)
    console.print(f"key {key.id} for project {key.project_id}", soft_wrap=True)
    console.print(secret, soft_wrap=True)


@keys_cli.command("list")
def keys_list(
    data_dir: Path = DataDir, database_url: str = DatabaseUrl, as_json: bool = AsJson
) -> None:
    """List API keys (never their secrets)."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    found: list[taskstore.ApiKey] = _local_store(settings, lambda store: store.list_api_keys())
    rows = [
        {
            "id": key.id,
            "projectId": key.project_id,
            "name": key.name,
            "createdAt": key.created_at.isoformat(timespec="seconds"),
            "revokedAt": key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else None,
        }
        for key in found
    ]
    if as_json:
        _print_json(rows)
        return
    _columns(
        ["ID", "PROJECT", "NAME", "CREATED", "REVOKED"],
        [
            [
                key.id,
                key.project_id,
                key.name,
                key.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                key.revoked_at.astimezone().strftime("%Y-%m-%d %H:%M:%S") if key.revoked_at else "",
            ]
            for key in found
        ],
    )


@keys_cli.command("revoke")
def keys_revoke(key_id: str, data_dir: Path = DataDir, database_url: str = DatabaseUrl) -> None:
    """Revoke an API key at once."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    _local_store(settings, lambda store: store.revoke_api_key(key_id))
    console.print(f"revoked {key_id}")


# -- login ------------------------------------------------------------------------------------
@cli.command()
@_calls
def login(
    server: str = typer.Option(
        client.DEFAULT_SERVER, "--server", envvar="MEDIATASKS_SERVER_URL", help="Server URL."
    ),
    api_key: str = typer.Option(
        ..., "--api-key", envvar="MEDIATASKS_API_KEY", prompt=True, hide_input=True
    ),
) -> None:
    """Check a key against a server and keep both for the commands that follow."""
    chosen = client.Login(server=server.rstrip("/"), api_key=api_key.strip())
    with client.Api(chosen) as api:
        api.call("GET", "/api/task", params={"limit": 1})
    path = client.save_login(chosen)
    console.print(f"logged in to {chosen.server}; kept in {path}", soft_wrap=True)


# -- tasks --------------------------------------------------------------------------------------
def _livepeer_row(task: dict[str, Any]) -> list[str]:
    status = task.get("status", {})
    progress = 1.0 if status.get("phase") == "completed" else status.get("progress")
    return [
        task["id"],
        task.get("type", ""),
        status.get("phase", ""),
        f"{progress:.0%}" if isinstance(progress, int | float) else "",
        _time(task.get("createdAt")),
        task.get("outputAssetId") or task.get("inputAssetId") or "",
        status.get("errorMessage", ""),
    ]


def _flat_row(task: dict[str, Any]) -> list[str]:
    percent = (task.get("progress") or {}).get("percent")
    return [
        task["id"],
        task.get("type", ""),
        FLAT_PHASES.get(task.get("state", ""), task.get("state", "")),
        f"{percent}%" if percent is not None else "",
        _time(task.get("creationDate")),
        task.get("score", ""),
        (task.get("result") or {}).get("error", "") if task.get("state") == "error" else "",
    ]


@task_cli.command("list")
@_calls
def task_list(
    phase: str = typer.Option(
        None, "--phase", help="pending, waiting, running, completed, failed or cancelled."
    ),
    task_type: str = typer.Option(
        None, "--type", help="upload, transcode-file, clip, export, export-data, audio-export."
    ),
    limit: int = typer.Option(20, "--limit", help="How many of each API's newest tasks."),
    server: str = ServerUrl,
    api_key: str = ApiKey,
    as_json: bool = AsJson,
) -> None:
    """List recent tasks, Livepeer's and Flat's (audio exports), newest first.

    The asset column is the task's output asset (or input), or a Flat task's score.
    """
    filters = [{"id": "phase", "value": phase}] if phase else []
    if task_type:
        filters.append({"id": "type", "value": task_type})
    livepeer: list[dict[str, Any]] = []
    flat: list[dict[str, Any]] = []
    with _api(server, api_key) as api:
        if task_type != "audio-export":
            params: dict[str, Any] = {"limit": limit, "order": "createdAt-true"}
            if filters:
                params["filters"] = json.dumps(filters)
            livepeer = api.call("GET", "/api/task", params=params)
        if task_type in (None, "audio-export") and (phase is None or phase in FLAT_STATES):
            flat_params: dict[str, Any] = {"limit": limit}
            if phase:
                flat_params["state"] = FLAT_STATES[phase]
            flat = api.call("GET", "/v2/tasks", params=flat_params)
    if as_json:
        _print_json({"livepeer": livepeer, "flat": flat})
        return
    rows = sorted(
        [*(_livepeer_row(t) for t in livepeer), *(_flat_row(t) for t in flat)],
        key=lambda row: row[4],
        reverse=True,
    )
    _columns(["ID", "TYPE", "PHASE", "PROGRESS", "CREATED", "ASSET", "ERROR"], rows)


def _find_task(api: client.Api, task_id: str) -> tuple[str, dict[str, Any]]:
    """``("livepeer" | "flat", task)``: a task of either API, by id."""
    try:
        return "livepeer", api.call("GET", f"/api/task/{task_id}")
    except client.CallFailed as exc:
        if exc.status != 404:
            raise
    return "flat", api.call("GET", f"/v2/tasks/{task_id}")


@task_cli.command("get")
@_calls
def task_get(task_id: str, server: str = ServerUrl, api_key: str = ApiKey) -> None:
    """Print a task as JSON (Livepeer's shape, or Flat's for an audio export)."""
    with _api(server, api_key) as api:
        _print_json(_find_task(api, task_id)[1])


@task_cli.command("cancel")
@_calls
def task_cancel(task_id: str, server: str = ServerUrl, api_key: str = ApiKey) -> None:
    """Cancel a task; a running one is stopped."""
    with _api(server, api_key) as api:
        dialect, _ = _find_task(api, task_id)
        if dialect == "livepeer":
            found = api.call("POST", f"/api/task/{task_id}/cancel")
            console.print(f"{task_id}: {found['status']['phase']}")
        else:
            found = api.call("POST", f"/v2/tasks/{task_id}/cancel")
            console.print(f"{task_id}: {FLAT_PHASES.get(found['state'], found['state'])}")


@task_cli.command("retry")
@_calls
def task_retry(task_id: str, server: str = ServerUrl, api_key: str = ApiKey) -> None:
    """Retry a failed or cancelled task."""
    with _api(server, api_key) as api:
        api.call("POST", f"/api/task/{task_id}/retry")
    console.print(f"{task_id}: waiting")


def _watch(api: client.Api, task_id: str, as_json: bool = False) -> None:
    """A live progress bar until the task ends; exit status 1 unless it completed."""
    dialect, found = _find_task(api, task_id)
    with Progress(
        TextColumn("{task.fields[phase]:>10}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        console=errors_out if as_json else console,
        transient=as_json,
    ) as bar:
        if dialect == "livepeer":
            phase = _follow_events(api, task_id, found, bar)
            final = api.call("GET", f"/api/task/{task_id}")
            message = final["status"].get("errorMessage", "")
        else:
            phase, final = _poll_flat(api, task_id, found, bar)
            message = (final.get("result") or {}).get("error", "")
    if as_json:
        _print_json(final)
    elif phase == "completed":
        console.print(f"[green]completed[/] {task_id}")
    else:
        console.print(f"[red]{phase}[/] {task_id}: {message}", soft_wrap=True)
    if phase != "completed":
        raise typer.Exit(1)


def _follow_events(api: client.Api, task_id: str, found: dict[str, Any], bar: Progress) -> str:
    phase = found["status"]["phase"]
    row = bar.add_task(task_id, total=1.0, phase=phase)
    last_id = ""
    while phase not in TERMINAL:
        try:
            for event_id, event in api.events(f"/api/task/{task_id}/events", last_id):
                last_id, phase = event_id, event["phase"]
                done = 1.0 if phase == "completed" else event.get("progress") or 0.0
                bar.update(row, completed=done, phase=phase)
        except httpx.TransportError:
            time.sleep(1)  # the server restarted: resume from the last event seen
    bar.update(row, completed=1.0 if phase == "completed" else None, phase=phase)
    return str(phase)


def _poll_flat(
    api: client.Api, task_id: str, found: dict[str, Any], bar: Progress
) -> tuple[str, dict[str, Any]]:
    row = bar.add_task(task_id, total=100.0, phase=FLAT_PHASES.get(found["state"], ""))
    while True:
        phase = FLAT_PHASES.get(found["state"], found["state"])
        percent = (found.get("progress") or {}).get("percent") or 0
        bar.update(row, completed=percent, phase=phase)
        if phase in TERMINAL:
            return phase, found
        time.sleep(0.5)
        found = api.call("GET", f"/v2/tasks/{task_id}")


@task_cli.command("watch")
@_calls
def task_watch(
    task_id: str, server: str = ServerUrl, api_key: str = ApiKey, as_json: bool = AsJson
) -> None:
    """Draw a live progress bar from the task's events, then print the outcome."""
    with _api(server, api_key) as api:
        _watch(api, task_id, as_json)


# -- assets -------------------------------------------------------------------------------------
def _asset_rows(found: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            asset["id"],
            asset.get("name", ""),
            asset.get("status", {}).get("phase", ""),
            f"{asset['videoSpec']['duration']:.1f}s" if asset.get("videoSpec") else "",
            _time(asset.get("createdAt")),
            asset.get("playbackUrl", ""),
        ]
        for asset in found
    ]


_ASSET_HEADERS = ["ID", "NAME", "PHASE", "DURATION", "CREATED", "PLAYBACK"]


@asset_cli.command("import")
@_calls
def asset_import(
    url: str,
    name: str = typer.Option(None, "--name", help="The asset's name (default: the URL's file)."),
    watch: bool = Watch,
    server: str = ServerUrl,
    api_key: str = ApiKey,
    as_json: bool = AsJson,
) -> None:
    """Import a video by URL into a new asset (HLS ladder, MP4 renditions)."""
    with _api(server, api_key) as api:
        body = {"name": name or url.rstrip("/").rsplit("/", 1)[-1] or url, "url": url}
        created = api.call("POST", "/api/asset/upload/url", json=body)
        asset, task_id = created["asset"], created["task"]["id"]
        if as_json and not watch:
            _print_json(created)
            return
        if not as_json:
            console.print(f"asset {asset['id']}  task {task_id}", soft_wrap=True)
        if watch:
            _watch(api, task_id, as_json)


@asset_cli.command("upload")
@_calls
def asset_upload(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    name: str = typer.Option(None, "--name", help="The asset's name (default: the file's)."),
    chunk_size: int = typer.Option(
        8 * 1024 * 1024, "--chunk-size", help="Bytes per tus request.", min=1024
    ),
    watch: bool = Watch,
    server: str = ServerUrl,
    api_key: str = ApiKey,
    as_json: bool = AsJson,
) -> None:
    """Upload a file through tus, resumable: a dropped connection is retried from where the
    server got to, and the same command run again after an interruption goes on from there."""
    with _api(server, api_key) as api:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=errors_out if as_json else console,
        ) as bar:
            row = bar.add_task(file.name, total=file.stat().st_size)
            upload = client.upload_file(
                api,
                file,
                name=name or file.name,
                chunk_size=chunk_size,
                on_progress=lambda sent, total: bar.update(row, completed=sent, total=total),
                on_retry=lambda sent, why: bar.console.print(
                    f"connection lost after {sent} bytes ({why}); resuming"
                ),
            )
        if not as_json:
            resumed = " (resumed)" if upload.resumed else ""
            console.print(
                f"uploaded{resumed}: asset {upload.asset_id}  task {upload.task_id}",
                soft_wrap=True,
            )
        if watch:
            _watch(api, upload.task_id, as_json)
        elif as_json:
            _print_json({"asset": {"id": upload.asset_id}, "task": {"id": upload.task_id}})


@asset_cli.command("list")
@_calls
def asset_list(
    limit: int = typer.Option(20, "--limit"),
    server: str = ServerUrl,
    api_key: str = ApiKey,
    as_json: bool = AsJson,
) -> None:
    """List assets, newest first."""
    with _api(server, api_key) as api:
        found = api.call("GET", "/api/asset", params={"limit": limit, "order": "createdAt-true"})
    if as_json:
        _print_json(found)
        return
    _columns(_ASSET_HEADERS, _asset_rows(found))


@asset_cli.command("get")
@_calls
def asset_get(
    asset_id: str, server: str = ServerUrl, api_key: str = ApiKey, as_json: bool = AsJson
) -> None:
    """Show an asset (its JSON with --json)."""
    with _api(server, api_key) as api:
        found = api.call("GET", f"/api/asset/{asset_id}")
    if as_json:
        _print_json(found)
        return
    _columns(_ASSET_HEADERS, _asset_rows([found]))
    if found.get("downloadUrl"):
        console.print(f"download: {found['downloadUrl']}", soft_wrap=True)
    error = found.get("status", {}).get("errorMessage")
    if error:
        console.print(f"[red]error:[/] {error}", soft_wrap=True)


@asset_cli.command("delete")
@_calls
def asset_delete(asset_id: str, server: str = ServerUrl, api_key: str = ApiKey) -> None:
    """Delete an asset and its media; its unfinished tasks are cancelled."""
    with _api(server, api_key) as api:
        api.call("DELETE", f"/api/asset/{asset_id}")
    console.print(f"deleted {asset_id}")


# -- webhooks -----------------------------------------------------------------------------------
@webhook_cli.command("list")
@_calls
def webhook_list(server: str = ServerUrl, api_key: str = ApiKey, as_json: bool = AsJson) -> None:
    """List webhooks."""
    with _api(server, api_key) as api:
        found = api.call("GET", "/api/webhook")
    if as_json:
        _print_json(found)
        return
    rows = [
        [
            hook["id"],
            hook.get("name", ""),
            hook.get("url", ""),
            ",".join(hook.get("events") or ["*"]),
            "failing" if hook.get("status", {}).get("lastFailure") else "",
        ]
        for hook in found
    ]
    _columns(["ID", "NAME", "URL", "EVENTS", "STATUS"], rows)


@webhook_cli.command("logs")
@_calls
def webhook_logs(
    webhook_id: str,
    limit: int = typer.Option(20, "--limit"),
    server: str = ServerUrl,
    api_key: str = ApiKey,
    as_json: bool = AsJson,
) -> None:
    """A webhook's delivery attempts, newest first: event, answer, duration."""
    with _api(server, api_key) as api:
        found = api.call("GET", f"/api/webhook/{webhook_id}/log", params={"limit": limit})
    if as_json:
        _print_json(found)
        return
    rows = []
    for entry in found:
        response = entry.get("response") or {}
        rows.append(
            [
                entry["id"],
                _time(entry.get("createdAt")),
                entry.get("event", ""),
                "ok" if entry.get("success") else "failed",
                str(response.get("status") or response.get("error") or ""),
                f"{entry.get('duration', 0):g}s",
            ]
        )
    _columns(["ID", "AT", "EVENT", "RESULT", "ANSWER", "DURATION"], rows)


# -- scores -------------------------------------------------------------------------------------
@score_cli.command("import")
@_calls
def score_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    title: str = typer.Option(None, "--title", help="The score's title (default: its own)."),
    server: str = ServerUrl,
    api_key: str = ApiKey,
    as_json: bool = AsJson,
) -> None:
    """Import a MusicXML, compressed MusicXML (.mxl) or MIDI file as a Flat score."""
    data = file.read_bytes()
    body: dict[str, Any] = {"filename": file.name, "privacy": "private"}
    try:
        body["data"] = data.decode("utf-8")
    except UnicodeDecodeError:
        body["data"] = base64.b64encode(data).decode()
        body["dataEncoding"] = "base64"
    if title:
        body["title"] = title
    with _api(server, api_key) as api:
        created = api.call("POST", "/v2/scores", json=body)
    if as_json:
        _print_json(created)
        return
    parts = ", ".join(part.get("id", "") for part in created.get("parts", []))
    console.print(f"score {created['id']}  {created.get('title', '')}  parts: {parts}")


@score_cli.command("export")
@_calls
def score_export(
    score_id: str,
    audio_format: str = typer.Option("mp3", "--format", help="mp3 or wav."),
    revision: str = typer.Option("last", "--revision", help="A revision id, or last."),
    parts: str = typer.Option(None, "--parts", help="Comma-separated part ids (default: all)."),
    output: Path = typer.Option(None, "--output", help="Save the audio here (implies --watch)."),
    watch: bool = Watch,
    server: str = ServerUrl,
    api_key: str = ApiKey,
    as_json: bool = AsJson,
) -> None:
    """Render a score to audio with an audio-export task; --output saves the file."""
    body = {"parts": parts.split(",")} if parts else {}
    with _api(server, api_key) as api:
        path = f"/v2/scores/{score_id}/revisions/{revision}/{audio_format}/task"
        created = api.call("POST", path, json=body)
        if not (watch or output):
            if as_json:
                _print_json(created)
            else:
                console.print(f"task {created['id']}: {FLAT_PHASES[created['state']]}")
            return
        with Progress(
            TextColumn("{task.fields[phase]:>10}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TimeElapsedColumn(),
            console=errors_out if as_json else console,
        ) as bar:
            phase, final = _poll_flat(api, created["id"], created, bar)
        if phase != "completed":
            if as_json:
                _print_json(final)
            error = (final.get("result") or {}).get("error", "")
            _fail(f"{phase} {final['id']}: {error}")
        if output is not None:
            size = api.download(final["result"]["url"], output)
            if not as_json:
                console.print(f"saved {output} ({size} bytes)", soft_wrap=True)
        if as_json:
            _print_json(final)
        elif output is None:
            console.print(f"completed {final['id']}: {final['result']['url']}", soft_wrap=True)


def main() -> None:
    """Entry point of the ``mediatasks`` command."""
    cli()
