"""The tasks pages: ``/tasks``, every task of the project as it moves, and ``/tasks/{id}``.

The list shows the project's tasks of every type (Flat's ``audio-export`` too), newest first, in
keyset pages (the cursor of ``/api/task``: a walk never repeats or skips a task because others
were created meanwhile), with the counts per phase beside it and filters by type, phase, task or
asset id and creation time.  Several tasks can be cancelled or retried at once.

What moves is streamed by ``GET /tasks/live?ids=...`` (server-sent events): ``status`` events
carry a task's status cell, rendered here as on the page (phase word and colour, progress bar,
queue position or ETA), and ``counts`` events the counts per phase; ``static/tasks.js`` puts them
in place.  A task's page shows its timeline (phases, and each attempt with its worker, duration,
outcome, FFmpeg command and the tail of its error output), its params and output (what ``/api``
shows: write-only fields never appear), the webhook deliveries its events caused, and cancel and
retry buttons.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shlex
import urllib.parse
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from mediatasks import errors, fetch, service, tasks, taskstore, watch
from mediatasks.api.livepeer import events as task_events
from mediatasks.api.livepeer import paging, views
from mediatasks.api.livepeer.auth import ApiError
from mediatasks.api.runtime import Runtime
from mediatasks.taskstore import listing
from mediatasks.web import render, session

__all__ = ["PAGE_SIZES", "create_router"]

#: How many tasks a page may show; the first is the default.
PAGE_SIZES: Final = (25, 50, 100)
#: The most tasks one live stream or one bulk action takes.
_MAX_IDS: Final = 100
#: The order of the list: newest first, by a field that never changes (stable pages).
_ORDER: Final = (("created_at", True),)
_COLUMNS: Final = frozenset(paging.TASK_FIELDS.values())
#: A live stream ends after this long; the browser reconnects at once (a new request).
_STREAM_S: Final = 120.0
#: How often a live stream checks that its session still lives: a revoked key's stream ends
#: within this long (the browser's reconnection is then sent to sign in).
_RECHECK_S: Final = 5.0
_KEEPALIVE_S: Final = 15.0
_BULK_ACTIONS: Final = ("cancel", "retry")
_NOT_FOUND: Final = "There is no task with this id in this project."


# -- parsing the list's filters --------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True)
class _Filters:
    """The list's filters as the form sent them (kept as text, to fill the form again)."""

    type: str = ""
    phase: str = ""
    #: A task id, or an asset id (the tasks that fill or read it).
    id: str = ""
    #: ``YYYY-MM-DDTHH:MM`` in UTC (an ``<input type="datetime-local">``).
    created_from: str = ""
    created_to: str = ""
    limit: int = PAGE_SIZES[0]

    def params(self) -> dict[str, str]:
        """The query string of these filters (without the cursor)."""
        values = {
            "type": self.type,
            "phase": self.phase,
            "id": self.id,
            "created_from": self.created_from,
            "created_to": self.created_to,
        }
        if self.limit != PAGE_SIZES[0]:
            values["limit"] = str(self.limit)
        return {key: value for key, value in values.items() if value}

    def url(self, **extra: str) -> str:
        query = urllib.parse.urlencode({**self.params(), **extra})
        return "/tasks" + (f"?{query}" if query else "")

    @property
    def active(self) -> bool:
        return bool(self.type or self.phase or self.id or self.created_from or self.created_to)


def _text(params: Mapping[str, str], name: str, max_chars: int = 200) -> str:
    value = params.get(name, "").strip()
    if len(value) > max_chars or "\x00" in value:
        raise render.PageError(400, f"The filter “{name}” is too long.")
    return value


def _moment(value: str, label: str) -> int | None:
    """Unix milliseconds of a ``datetime-local`` value, read as UTC."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise render.PageError(
            400, f"“{value}” is not a date and time for “{label}” (YYYY-MM-DDTHH:MM, UTC)."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not 1970 <= moment.year <= 9999:
        raise render.PageError(400, f"The date for “{label}” is out of range.")
    return tasks.unix_ms(moment)


def _parse_filters(params: Mapping[str, str]) -> _Filters:
    task_type = _text(params, "type")
    if task_type and task_type not in {str(kind) for kind in tasks.TaskType}:
        raise render.PageError(400, f"There is no task type “{task_type}”.")
    phase = _text(params, "phase")
    if phase and phase not in {str(each) for each in tasks.Phase}:
        raise render.PageError(400, f"There is no phase “{phase}”.")
    sizes = {str(size): size for size in PAGE_SIZES}
    limit = sizes.get(params.get("limit", ""), PAGE_SIZES[0])
    return _Filters(
        type=task_type,
        phase=phase,
        id=_text(params, "id"),
        created_from=_text(params, "created_from", 40),
        created_to=_text(params, "created_to", 40),
        limit=limit,
    )


def _query(filters: _Filters, project_id: str, cursor: str) -> taskstore.Query:
    conditions = []
    if filters.type:
        conditions.append(taskstore.Filter(field="type", op="eq", value=filters.type))
    if filters.phase:
        conditions.append(taskstore.Filter(field="phase", op="eq", value=filters.phase))
    since = _moment(filters.created_from, "created from")
    until = _moment(filters.created_to, "created until")
    if since is not None:
        conditions.append(taskstore.Filter(field="created_at", op="gte", value=since))
    if until is not None:
        # Up to the end of the minute the form names.
        conditions.append(taskstore.Filter(field="created_at", op="lt", value=until + 60_000))
    query = taskstore.Query(
        project_id=project_id,
        limit=filters.limit,
        order=_ORDER,
        filters=conditions,
        related_to=filters.id or None,
    )
    if not cursor:
        return query
    try:
        after = paging.decode_cursor(cursor, _key(query))
    except ApiError:
        raise render.PageError(
            400, "This page link is not valid any more: start again from the first page."
        ) from None
    return dataclasses.replace(query, after=after)


def _key(query: taskstore.Query) -> tuple[tuple[str, bool], ...]:
    return listing.sort_key(query, _COLUMNS)


# -- rendering ---------------------------------------------------------------------------------
def _when(value: datetime | int | None) -> str:
    """A moment as people read it here: ``2026-12-01 13:45:02 UTC``."""
    if value is None:
        return ""
    if isinstance(value, int):
        value = datetime.fromtimestamp(value / 1000, tz=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(value: datetime | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        value = datetime.fromtimestamp(value / 1000, tz=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _duration(ms: int | float | None) -> str:
    """``850 ms``, ``12.4 s``, ``3 min 05 s``, ``2 h 01 min``."""
    if ms is None:
        return ""
    if ms < 1000:
        return f"{int(ms)} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, second = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {second:02d} s"
    hours, minute = divmod(minutes, 60)
    return f"{hours} h {minute:02d} min"


def _eta_text(status: watch.TaskStatus, now: datetime) -> str:
    if status.eta is None:
        return ""
    left_ms = max(0.0, (status.eta - now).total_seconds() * 1000)
    return f"about {_duration(left_ms)} left" if left_ms >= 1000 else "finishing"


def _shell(argv: Any) -> str:
    """A command line as a shell would take it (its words quoted where needed)."""
    if isinstance(argv, list | tuple):
        return shlex.join(str(word) for word in argv)
    return str(argv)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


_HELPERS: Final[Mapping[str, Any]] = {
    "when": _when,
    "iso": _iso,
    "duration": _duration,
    "eta_text": _eta_text,
    "shell": _shell,
}


def _status_html(status: watch.TaskStatus, now: datetime) -> str:
    """The status cell of a task, as the page has it (for the live stream)."""
    template = render.TEMPLATES.get_template("_task_status.html")
    return template.render(status=status, now=now, **_HELPERS)


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    text = json.dumps(data, separators=(",", ":"))
    return f"event: {event}\ndata: {text}\n\n".encode()


def _counts_json(counts: Mapping[tasks.Phase, int]) -> dict[str, int]:
    return {str(phase): counts.get(phase, 0) for phase in tasks.Phase}


def _bulk_notice(params: Mapping[str, str]) -> str:
    """The sentence saying what a bulk action did (it redirects back with its counts)."""
    action = params.get("bulk", "")
    if action not in _BULK_ACTIONS:
        return ""
    done = params.get("done", "0")
    skipped = params.get("skipped", "0")
    if not (done.isdigit() and skipped.isdigit()):
        return ""
    verb = {"cancel": "Cancelled", "retry": "Retried"}[action]
    noun = "task" if done == "1" else "tasks"
    text = f"{verb} {int(done)} {noun}."
    if int(skipped):
        why = "already finished" if action == "cancel" else "not failed or cancelled"
        text += f" {int(skipped)} could not be {verb.lower()} ({why})."
    return text


def _safe_back(target: str) -> str:
    """Where a bulk action returns: a ``/tasks`` list URL, never another site."""
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc or parts.path != "/tasks":
        return "/tasks"
    return urllib.parse.urlunsplit(("", "", parts.path, parts.query, ""))


def _with_query(url: str, **extra: str) -> str:
    parts = urllib.parse.urlsplit(url)
    kept = [
        (key, value)
        for key, value in urllib.parse.parse_qsl(parts.query)
        if key not in {"bulk", "done", "skipped"}
    ]
    return parts.path + "?" + urllib.parse.urlencode([*kept, *extra.items()])


def _ids(raw: str | Sequence[str]) -> list[str]:
    """Task ids from a comma-separated list or a form's fields: short, unique, at most 100."""
    values = raw.split(",") if isinstance(raw, str) else list(raw)
    found: list[str] = []
    for value in values:
        value = value.strip()
        if value and len(value) <= 64 and "\x00" not in value and value not in found:
            found.append(value)
    if len(found) > _MAX_IDS:
        raise render.PageError(400, f"At most {_MAX_IDS} tasks at once.")
    return found


# -- the pages ---------------------------------------------------------------------------------
def create_router(runtime: Runtime) -> APIRouter:
    """``/tasks``, ``/tasks/live``, ``/tasks/bulk`` and ``/tasks/{id}`` with its actions."""
    router = APIRouter()
    store = runtime.store

    async def visible(task_id: str, project_id: str) -> tasks.Task:
        try:
            return await store.get_task(task_id, project_id)
        except errors.NotFound:
            raise render.PageError(404, _NOT_FOUND) from None

    @router.get("/tasks")
    async def task_list(request: Request, current: session.Current) -> Response:
        params = request.query_params
        filters = _parse_filters(params)
        query = _query(filters, current.project_id, params.get("cursor", ""))
        page = await store.list_tasks(query)
        counts = await store.count_tasks_by_phase(current.project_id)
        now = datetime.now(UTC)
        rows = [(task, await watch.status_of(store, task, now)) for task in page.items]
        next_url = None
        if page.next_after is not None:
            next_url = filters.url(cursor=paging.encode_cursor(_key(query), page.next_after))
        return render.render(
            request,
            "tasks.html",
            current,
            filters=filters,
            rows=rows,
            counts=counts,
            total=sum(counts.values()),
            phases=list(tasks.Phase),
            types=[str(kind) for kind in tasks.TaskType],
            page_sizes=PAGE_SIZES,
            next_url=next_url,
            first_url=filters.url() if query.after is not None else None,
            back=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
            notice=_bulk_notice(params),
            now=now,
            **_HELPERS,
        )

    @router.get("/tasks/live")
    async def live(request: Request, current: session.Current, ids: str = "") -> Response:
        watched = _ids(ids)
        return StreamingResponse(
            _stream(request, current.project_id, watched),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _stream(request: Request, project_id: str, ids: list[str]) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        started = last_sent = checked = loop.time()
        yield b"retry: 1000\n\n"
        changes = watch.follow(store, project_id, ids)
        try:
            async for change in changes:
                if await request.is_disconnected() or loop.time() - started > _STREAM_S:
                    return
                if loop.time() - checked >= _RECHECK_S:
                    checked = loop.time()
                    if not await session.still_live(request):
                        return
                if change is None:
                    if loop.time() - last_sent >= _KEEPALIVE_S:
                        last_sent = loop.time()
                        yield b": keep-alive\n\n"
                    continue
                now = datetime.now(UTC)
                for status in change.statuses:
                    yield _sse(
                        "status",
                        {
                            "id": status.id,
                            "phase": str(status.phase),
                            "progress": status.progress,
                            "html": _status_html(status, now),
                        },
                    )
                if change.counts is not None:
                    yield _sse(
                        "counts", {"counts": _counts_json(change.counts), "created": change.created}
                    )
                last_sent = loop.time()
        finally:
            await changes.aclose()

    @router.post("/tasks/bulk")
    async def bulk(request: Request, current: session.Current) -> Response:
        form = await request.form()
        action = form.get("action")
        if action not in _BULK_ACTIONS:
            raise render.PageError(400, "Choose to cancel or to retry the selected tasks.")
        ids = _ids([value for value in form.getlist("ids") if isinstance(value, str)])
        back_value = form.get("back")
        back = _safe_back(back_value if isinstance(back_value, str) else "/tasks")
        if not ids:
            raise render.PageError(400, "Select at least one task first.")
        done = skipped = 0
        for task_id in ids:
            try:
                if action == "cancel":
                    await service.cancel_task(store, task_id, current.project_id)
                else:
                    await service.retry_task(store, task_id, current.project_id)
            except (errors.NotFound, errors.InvalidTransition):
                skipped += 1
            else:
                done += 1
        target = _with_query(back, bulk=str(action), done=str(done), skipped=str(skipped))
        return RedirectResponse(target, status_code=303)

    async def deliveries_context(task: tasks.Task, project_id: str) -> dict[str, Any]:
        deliveries = await store.list_task_deliveries(task.id, project_id)
        return {
            "task": task,
            "deliveries": [
                (delivery, fetch.redact_url(delivery.webhook_url)) for delivery in deliveries
            ],
            "deliveries_pending": any(d.state == "pending" for d in deliveries),
            "can_cancel": task.phase in tasks.ACTIVE,
            **_HELPERS,
        }

    async def detail_context(request: Request, task: tasks.Task, project_id: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        log = await store.list_events(task.id, limit=100_000)
        # What /api shows of it: credentials masked, write-only fields left out, and a completed
        # upload's output with its asset.
        shown = await views.render_task(runtime, task, runtime.base_url(str(request.base_url)))
        return {
            **await deliveries_context(task, project_id),
            "status": await watch.status_of(store, task, now),
            "timeline": task_events.timeline(log),
            "params_json": _pretty(shown["params"]),
            "output_json": _pretty(shown["output"]) if "output" in shown else None,
            "can_retry": task.phase in (tasks.Phase.FAILED, tasks.Phase.CANCELLED),
            "now": now,
        }

    @router.get("/tasks/{task_id}")
    async def task_page(task_id: str, request: Request, current: session.Current) -> Response:
        task = await visible(task_id, current.project_id)
        context = await detail_context(request, task, current.project_id)
        notice = {"cancel": "The task was cancelled.", "retry": "The task will run again."}
        return render.render(
            request,
            "task.html",
            current,
            notice=notice.get(request.query_params.get("done", ""), ""),
            **context,
        )

    @router.get("/tasks/{task_id}/panel")
    async def task_panel(task_id: str, request: Request, current: session.Current) -> Response:
        """The live part of a task's page, for the page to swap in when the task moves."""
        task = await visible(task_id, current.project_id)
        context = await detail_context(request, task, current.project_id)
        return render.render(request, "_task_panel.html", current, **context)

    @router.get("/tasks/{task_id}/deliveries")
    async def task_deliveries(task_id: str, request: Request, current: session.Current) -> Response:
        """The deliveries section of a task's page (it refreshes itself while some are due)."""
        task = await visible(task_id, current.project_id)
        context = await deliveries_context(task, current.project_id)
        return render.render(request, "_task_deliveries.html", current, **context)

    async def act(task_id: str, current: session.Session, action: str) -> Response:
        task = await visible(task_id, current.project_id)
        try:
            if action == "cancel":
                await service.cancel_task(store, task.id, current.project_id)
            else:
                await service.retry_task(store, task.id, current.project_id)
        except errors.InvalidTransition as exc:
            raise render.PageError(409, f"{exc.message[:1].upper()}{exc.message[1:]}.") from None
        except errors.NotFound:
            raise render.PageError(404, _NOT_FOUND) from None
        return RedirectResponse(f"/tasks/{urllib.parse.quote(task.id)}?done={action}", 303)

    @router.post("/tasks/{task_id}/cancel")
    async def cancel(task_id: str, current: session.Current) -> Response:
        return await act(task_id, current, "cancel")

    @router.post("/tasks/{task_id}/retry")
    async def retry(task_id: str, current: session.Current) -> Response:
        return await act(task_id, current, "retry")

    return router
