"""The ``mediatasks`` command.

``serve`` runs the HTTP service (and, unless ``--no-worker``, a worker in the same process);
``worker`` runs a worker alone; ``keys`` manages API keys directly in the task store; ``task``
talks to a running server over HTTP with an API key, as any client would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import httpx
import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mediatasks import __version__, app, errors, service, taskstore
from mediatasks import settings as settings_module
from mediatasks.webhooks import sender
from mediatasks.worker import handlers, loop

__all__ = ["main"]

cli = typer.Typer(help="mediatasks: a self-hosted asynchronous media task service.")
keys_cli = typer.Typer(help="Manage API keys (directly in the task store).")
task_cli = typer.Typer(help="Follow and steer tasks on a running server.")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(task_cli, name="task")

console = Console()

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
ServerUrl = typer.Option(
    "http://127.0.0.1:8000", "--server", envvar="MEDIATASKS_SERVER_URL", help="Server base URL."
)
ApiKey = typer.Option(
    None,
    "--api-key",
    envvar="MEDIATASKS_API_KEY",
    help="API key (default: the bootstrap key in the data folder).",
)


def _settings(**overrides: Any) -> settings_module.Settings:
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return settings_module.Settings(**given)
    except (errors.ConfigurationError, ValueError) as exc:
        console.print(f"[red]invalid settings:[/] {exc}")
        raise typer.Exit(2) from exc


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@cli.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@cli.command()
def serve(
    host: str = typer.Option(None, "--host", envvar="MEDIATASKS_HOST", help="Address to bind."),
    port: int = typer.Option(None, "--port", envvar="MEDIATASKS_PORT", help="Port to bind."),
    data_dir: Path = DataDir,
    database_url: str = DatabaseUrl,
    concurrency: int = Concurrency,
    no_worker: bool = typer.Option(
        False, "--no-worker", help="Serve HTTP only; workers run elsewhere (scaled shape)."
    ),
) -> None:
    """Run the HTTP service, with a worker unless --no-worker."""
    _logging()
    settings = _settings(
        host=host,
        port=port,
        data_dir=data_dir,
        database_url=database_url,
        concurrency=concurrency,
    )

    async def prepare() -> service.Bootstrap | None:
        runtime = app.open_runtime(settings)
        try:
            await runtime.store.migrate()
            return await service.bootstrap_key(runtime.store, settings.data_dir)
        finally:
            await runtime.blobs.close()
            await runtime.store.close()

    boot = asyncio.run(prepare())
    base = f"http://{settings.host}:{settings.port}"
    console.print(f"[bold]mediatasks {__version__}[/] on {base}")
    console.print(f"  Livepeer API: {base}/api    docs: {base}/docs")
    if boot is not None:
        console.print(f"  API key: [bold green]{boot.secret}[/]")
        console.print(f"  (kept in {settings.data_dir / 'bootstrap-api-key'})")
    else:
        console.print("  API keys: mediatasks keys create")
    uvicorn.run(
        app.create_app(settings, with_worker=not no_worker),
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5,
    )


@cli.command()
def worker(
    data_dir: Path = DataDir,
    database_url: str = DatabaseUrl,
    concurrency: int = Concurrency,
) -> None:
    """Run a worker: claim and run tasks until SIGTERM or SIGINT."""
    _logging()
    settings = _settings(data_dir=data_dir, database_url=database_url, concurrency=concurrency)

    async def run() -> None:
        runtime = app.open_runtime(settings)
        await runtime.store.migrate()
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

    asyncio.run(run())


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

    applied = asyncio.run(run())
    console.print(f"applied migrations: {applied}" if applied else "schema is up to date")


# -- keys ------------------------------------------------------------------------------------
async def _with_store(settings: settings_module.Settings, fn: Any) -> Any:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = taskstore.open_task_store(settings.resolved_database_url)
    try:
        await store.migrate()
        return await fn(store)
    finally:
        await store.close()


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

    key, secret = asyncio.run(_with_store(settings, run))
    console.print(f"key {key.id} for project {key.project_id}")
    console.print(secret, soft_wrap=True)


@keys_cli.command("list")
def keys_list(data_dir: Path = DataDir, database_url: str = DatabaseUrl) -> None:
    """List API keys (never their secrets)."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    found: list[taskstore.ApiKey] = asyncio.run(
        _with_store(settings, lambda store: store.list_api_keys())
    )
    table = Table("id", "project", "name", "created", "revoked")
    for key in found:
        table.add_row(
            key.id,
            key.project_id,
            key.name,
            key.created_at.isoformat(timespec="seconds"),
            key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
        )
    console.print(table)


@keys_cli.command("revoke")
def keys_revoke(key_id: str, data_dir: Path = DataDir, database_url: str = DatabaseUrl) -> None:
    """Revoke an API key at once."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    try:
        asyncio.run(_with_store(settings, lambda store: store.revoke_api_key(key_id)))
    except errors.NotFound as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(1) from exc
    console.print(f"revoked {key_id}")


# -- task -------------------------------------------------------------------------------------
def _client(server: str, api_key: str | None, data_dir: Path | None) -> httpx.Client:
    if not api_key:
        kept = (data_dir or settings_module.Settings().data_dir) / "bootstrap-api-key"
        if kept.exists():
            api_key = kept.read_text().strip()
    if not api_key:
        console.print("[red]no API key: pass --api-key or set MEDIATASKS_API_KEY[/]")
        raise typer.Exit(2)
    return httpx.Client(
        base_url=server.rstrip("/") + "/api",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    )


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach the server: {exc}[/]")
        raise typer.Exit(1) from exc
    if response.status_code >= 400:
        _call_failed(response)
    return response.json() if response.content else None


def _call_failed(response: httpx.Response) -> NoReturn:
    try:
        messages = response.json().get("errors", [response.text])
    except ValueError:
        messages = [response.text]
    console.print(f"[red]{response.status_code}: {'; '.join(map(str, messages))}[/]")
    raise typer.Exit(1)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


@task_cli.command("list")
def task_list(
    limit: int = typer.Option(20, "--limit"),
    server: str = ServerUrl,
    api_key: str = ApiKey,
    data_dir: Path = DataDir,
) -> None:
    """List recent tasks."""
    with _client(server, api_key, data_dir) as client:
        found = _call(client, "GET", "/task", params={"limit": limit})
    table = Table("id", "type", "phase", "progress", "retries", "error")
    for item in found:
        status = item["status"]
        progress = status.get("progress")
        table.add_row(
            item["id"],
            item["type"],
            status["phase"],
            f"{progress:.0%}" if progress is not None else "",
            str(status.get("retries", "")),
            status.get("errorMessage", ""),
        )
    console.print(table)


@task_cli.command("get")
def task_get(
    task_id: str, server: str = ServerUrl, api_key: str = ApiKey, data_dir: Path = DataDir
) -> None:
    """Print a task as JSON."""
    with _client(server, api_key, data_dir) as client:
        _print_json(_call(client, "GET", f"/task/{task_id}"))


@task_cli.command("cancel")
def task_cancel(
    task_id: str, server: str = ServerUrl, api_key: str = ApiKey, data_dir: Path = DataDir
) -> None:
    """Cancel a task; a running one is stopped."""
    with _client(server, api_key, data_dir) as client:
        found = _call(client, "POST", f"/task/{task_id}/cancel")
    console.print(f"{task_id}: {found['status']['phase']}")


@task_cli.command("retry")
def task_retry(
    task_id: str, server: str = ServerUrl, api_key: str = ApiKey, data_dir: Path = DataDir
) -> None:
    """Retry a failed or cancelled task."""
    with _client(server, api_key, data_dir) as client:
        _call(client, "POST", f"/task/{task_id}/retry")
    console.print(f"{task_id}: waiting")


def _sse_events(client: httpx.Client, path: str, last_id: str) -> Any:
    """Yield ``(id, data)`` of each Server-Sent Event at ``path``, resuming after ``last_id``."""
    headers = {"Accept": "text/event-stream"}
    if last_id:
        headers["Last-Event-ID"] = last_id
    with client.stream("GET", path, headers=headers, timeout=None) as response:
        if response.status_code >= 400:
            response.read()
            _call_failed(response)
        event_id, data = "", ""
        for line in response.iter_lines():
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif not line and data:
                yield event_id, json.loads(data)
                data = ""


@task_cli.command("watch")
def task_watch(
    task_id: str, server: str = ServerUrl, api_key: str = ApiKey, data_dir: Path = DataDir
) -> None:
    """Draw a live progress bar from the task's event stream, then print the outcome."""
    terminal = {"completed", "failed", "cancelled"}
    with (
        _client(server, api_key, data_dir) as client,
        Progress(
            TextColumn("{task.fields[phase]:>10}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TimeElapsedColumn(),
            console=console,
        ) as bar,
    ):
        found = _call(client, "GET", f"/task/{task_id}")
        phase = found["status"]["phase"]
        row = bar.add_task(task_id, total=1.0, phase=phase)
        last_id = ""
        while phase not in terminal:
            try:
                stream = _sse_events(client, f"/task/{task_id}/events", last_id)
                for event_id, event in stream:
                    last_id, phase = event_id, event["phase"]
                    done = 1.0 if phase == "completed" else event.get("progress", 0.0)
                    bar.update(row, completed=done, phase=phase)
            except httpx.TransportError:
                time.sleep(1)  # the server restarted: resume from the last event seen
        bar.update(row, completed=1.0 if phase == "completed" else None, phase=phase)
    status = _call_once(server, api_key, data_dir, task_id)
    if phase == "completed":
        console.print(f"[green]completed[/] {task_id}")
        return
    console.print(f"[red]{phase}[/] {task_id}: {status.get('errorMessage', '')}")
    raise typer.Exit(1)


def _call_once(server: str, api_key: str | None, data_dir: Path | None, task_id: str) -> Any:
    with _client(server, api_key, data_dir) as client:
        return _call(client, "GET", f"/task/{task_id}")["status"]


def main() -> None:
    """Entry point of the ``mediatasks`` command."""
    cli()
