"""The Assets pages: the list, one asset (its player, renditions, source, tasks), a new asset
(import by URL, or a tus upload from the browser), and deletion.

``/assets/live`` streams the status of the assets a page shows (server-sent events, one event
``asset-<id>`` per change, rendered by ``_asset_status.html``, then ``done`` once each of them is
ready or failed): a page follows the task that fills each asset without reloading.

An upload from the page asks ``POST /assets/new/upload`` (the service's ``request_upload``) for
the asset and its tus URL, signed for that one asset, and the browser then sends the file to the
Livepeer dialect's tus endpoint (``/api/asset/upload/tus``) with tus-js-client, which resumes
by itself after a dropped connection.  The page remembers (localStorage) the upload URL and the
asset of each file it sends; when the same file is chosen again after a reload, it asks
``POST /assets/{id}/upload`` (the service's ``pending_upload``) for that asset's panel and goes
on from the offset the tus ``HEAD`` answers, or starts anew if the asset is gone (404) or no
longer waits for its bytes (409).  It forgets an upload once it is over, once its resume is
refused, and, when the page loads, once its signed URL has expired (``uploads.URL_LIFETIME``
after its asset was made): an upload whose file was never chosen again goes then too.

Playback obeys the asset's policy.  A ``jwt`` asset plays only with a token signed by one of the
project's signing keys; the service keeps only their public halves (the private half is handed
out once, when a key is made), so the page cannot sign one: it says so, and takes a token that
the viewer pastes, which stays in the browser and goes only with the asset's media requests.  A
``webhook`` asset takes an access key the same way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from mediatasks import access, assets, errors, fetch, service, tasks, taskstore
from mediatasks.api.livepeer import uploads
from mediatasks.api.runtime import Runtime
from mediatasks.web import render, session

__all__ = ["create_router"]

#: Assets on one page of the list.
PAGE_SIZE: Final = 20
#: How often the live stream looks for news.
_POLL_S: Final = 0.5
_KEEPALIVE_S: Final = 15.0
#: Most assets one live stream follows (a page shows ``PAGE_SIZE``).
_MAX_FOLLOWED: Final = 100
#: Asset phases after which nothing changes without a new request.
_SETTLED: Final = frozenset({assets.AssetPhase.READY, assets.AssetPhase.FAILED})
#: The longest URL and name the form takes (as the API's schemas).
_MAX_URL_CHARS: Final = 4096
_MAX_NAME_CHARS: Final = 500
#: What an id or a cursor's id may hold: every id the store makes fits it.
_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CURSOR: Final = re.compile(r"(\d{1,19})\.([A-Za-z0-9_-]{1,64})")
#: Newest first by creation time, which never changes: a walk through the pages is stable.
_ORDER: Final = (("created_at", True), ("id", True))


# -- what the templates show ---------------------------------------------------------------------
def human_bytes(size: object) -> str:
    """``1.5 MB`` (powers of 1000, as file managers show sizes); ``—`` when unknown."""
    if not isinstance(size, int | float) or isinstance(size, bool) or size < 0:
        return "—"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_duration(seconds: object) -> str:
    """``1:05`` or ``1:02:05``; ``—`` when unknown."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return "—"
    whole = round(float(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def human_bitrate(bits_per_s: object) -> str:
    """``850 kbit/s``; ``—`` when unknown."""
    if not isinstance(bits_per_s, int | float) or isinstance(bits_per_s, bool):
        return "—"
    if bits_per_s >= 1_000_000:
        return f"{bits_per_s / 1_000_000:.1f} Mbit/s"
    return f"{bits_per_s / 1000:.0f} kbit/s"


def when(moment: datetime | None) -> str:
    """A time as the pages show it: UTC, to the second."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def media_url(key: str) -> str:
    """Where ``/media`` serves a published file (same origin as the page)."""
    return f"/media/{key}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Status:
    """What the live status of one asset shows: its phase and its task's."""

    asset: assets.Asset
    task: tasks.Task | None
    #: The task's phase and progress as of the last event seen (the stream shows each phase).
    task_phase: tasks.Phase | None
    task_progress: float | None

    @property
    def settled(self) -> bool:
        return self.asset.phase in _SETTLED and (
            self.task_phase is None or self.task_phase in tasks.TERMINAL
        )

    @property
    def percent(self) -> int | None:
        progress = self.task_progress if self.task_progress is not None else self.asset.progress
        if self.asset.phase is assets.AssetPhase.READY:
            return 100
        if progress is None:
            return None
        return max(0, min(100, int(progress * 100)))


async def _status(runtime: Runtime, asset: assets.Asset) -> Status:
    task = await runtime.store.task_of_asset(asset.id)
    return Status(
        asset=asset,
        task=task,
        task_phase=task.phase if task else None,
        task_progress=task.progress if task else None,
    )


def _parse_cursor(raw: str) -> tuple[int, str] | None:
    found = _CURSOR.fullmatch(raw)
    if found is None:
        return None
    return int(found[1]), found[2]


def _cursor(after: Sequence[Any]) -> str:
    created_ms, asset_id = after
    return f"{int(created_ms)}.{asset_id}"


# -- the routes -----------------------------------------------------------------------------------
#: What the Assets templates use besides what ``render`` gives every page.
_HELPERS: Final[dict[str, Any]] = {
    "human_bytes": human_bytes,
    "human_duration": human_duration,
    "human_bitrate": human_bitrate,
    "when": when,
    "media_url": media_url,
    # The upload page forgets the uploads it began whose signed URL has expired since.
    "upload_url_lifetime_s": int(uploads.URL_LIFETIME.total_seconds()),
}


def _fragment(template: str, **context: Any) -> str:
    """A live fragment as text, for the event stream."""
    return render.TEMPLATES.env.get_template(template).render(**_HELPERS, **context)


def create_router(runtime: Runtime) -> APIRouter:
    """The Assets pages over ``runtime``."""
    router = APIRouter()
    store = runtime.store

    def page(
        request: Request,
        template: str,
        signed_in: session.Session,
        status_code: int = 200,
        **context: Any,
    ) -> Response:
        values: dict[str, Any] = {**_HELPERS, **context}
        return render.render(request, template, signed_in, status_code=status_code, **values)

    def not_found(request: Request) -> Response:
        return render.error_response(
            request, 404, "There is no such asset in this project (it may have been deleted)."
        )

    def upload_panel(
        request: Request, signed_in: session.Session, asset: assets.Asset, task: tasks.Task
    ) -> Response:
        """The panel of one browser upload, with its tus URL (in the fragment's data)."""
        token = uploads.upload_token(runtime, asset)
        base = runtime.base_url(str(request.base_url))
        status = Status(asset=asset, task=task, task_phase=task.phase, task_progress=None)
        return page(
            request,
            "_asset_upload.html",
            signed_in,
            status=status,
            tus_endpoint=f"{base}/api/asset/upload/tus?token={token}",
        )

    @router.get("/assets", response_model=None)
    async def list_assets(
        request: Request, signed_in: session.Current, after: Annotated[str, Query()] = ""
    ) -> Response:
        cursor = _parse_cursor(after) if after else None
        if after and cursor is None:
            return page(
                request,
                "assets.html",
                signed_in,
                status_code=400,
                error="This page link is not valid: start again from the newest assets.",
                items=[],
                next_cursor=None,
                paged=True,
            )
        listed = await store.list_assets(
            taskstore.Query(
                project_id=signed_in.project_id,
                limit=PAGE_SIZE,
                order=_ORDER,
                after=list(cursor) if cursor else None,
            )
        )
        items = [await _status(runtime, asset) for asset in listed.items]
        next_cursor = _cursor(listed.next_after) if listed.next_after else None
        return page(
            request,
            "assets.html",
            signed_in,
            items=items,
            next_cursor=next_cursor,
            paged=bool(after),
            followed=[item.asset.id for item in items if not item.settled],
        )

    @router.get("/assets/new", response_model=None)
    async def new_asset(request: Request, signed_in: session.Current) -> Response:
        return page(request, "asset_new.html", signed_in, form={})

    @router.post("/assets/new/import", response_model=None)
    async def import_asset(
        request: Request,
        signed_in: session.Current,
        url: Annotated[str, Form()] = "",
        name: Annotated[str, Form()] = "",
    ) -> Response:
        url = url.strip()
        form = {"url": url[:_MAX_URL_CHARS], "name": name[:_MAX_NAME_CHARS]}
        refusal = ""
        if not url:
            refusal = "Give the URL of a video to import."
        elif len(url) > _MAX_URL_CHARS:
            refusal = f"This URL is longer than {_MAX_URL_CHARS} characters."
        elif len(name) > _MAX_NAME_CHARS:
            refusal = f"A name has at most {_MAX_NAME_CHARS} characters."
        if refusal:
            return page(
                request,
                "asset_new.html",
                signed_in,
                status_code=422,
                form=form,
                import_error=refusal,
            )
        try:
            asset, _, _ = await service.import_from_url(
                store,
                runtime.settings,
                project_id=signed_in.project_id,
                name=name.strip() or _name_of_url(url),
                url=url,
                options={},
            )
        except errors.InvalidInput as exc:
            return page(
                request,
                "asset_new.html",
                signed_in,
                status_code=422,
                form=form,
                import_error=f"This URL cannot be imported: {exc.message}",
            )
        return RedirectResponse(f"/assets/{asset.id}", status_code=303)

    @router.post("/assets/new/upload", response_model=None)
    async def request_upload(
        request: Request,
        signed_in: session.Current,
        name: Annotated[str, Form()] = "",
    ) -> Response:
        """The asset of a browser upload, and its tus URL (in the fragment's data)."""
        asset, task = await service.request_upload(
            store,
            runtime.settings,
            project_id=signed_in.project_id,
            name=name.strip()[:_MAX_NAME_CHARS] or "upload",
            options={},
        )
        return upload_panel(request, signed_in, asset, task)

    @router.post("/assets/{asset_id}/upload", response_model=None)
    async def resume_upload(
        asset_id: str, request: Request, signed_in: session.Current
    ) -> Response:
        """The panel of an upload that a page had begun (it remembers the asset of each file
        it sends), to go on with: 404 if the asset is gone, 409 once its upload is over."""
        try:
            asset, task = await service.pending_upload(
                store, project_id=signed_in.project_id, asset_id=asset_id
            )
        except errors.NotFound:
            return not_found(request)
        except errors.Conflict:
            return render.error_response(
                request, 409, "This asset is no longer waiting for its upload."
            )
        return upload_panel(request, signed_in, asset, task)

    @router.get("/assets/live", response_model=None)
    async def live(
        request: Request,
        signed_in: session.Current,
        ids: Annotated[list[str] | None, Query(alias="id")] = None,
    ) -> Response:
        wanted = [i for i in dict.fromkeys(ids or []) if _ID.fullmatch(i)][:_MAX_FOLLOWED]
        return StreamingResponse(
            _follow(runtime, request, signed_in, wanted),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/assets/{asset_id}", response_model=None)
    async def show_asset(asset_id: str, request: Request, signed_in: session.Current) -> Response:
        try:
            asset = await store.get_asset(asset_id, signed_in.project_id)
        except errors.NotFound:
            return not_found(request)
        made_by = await _tasks_of(store, signed_in.project_id, "output_asset_id", asset.id)
        used_by = await _tasks_of(store, signed_in.project_id, "input_asset_id", asset.id)
        status = await _status(runtime, asset)
        return page(
            request,
            "asset.html",
            signed_in,
            asset=asset,
            status=status,
            made_by=made_by,
            used_by=[task for task in used_by if task not in made_by],
            policy=access.policy_type(asset),
            playable=_playable(asset),
            source_url=_source_url(asset),
            source_text=_source_text(asset),
            ladder=_ladder(asset),
        )

    @router.get("/assets/{asset_id}/delete", response_model=None)
    async def confirm_delete(
        asset_id: str, request: Request, signed_in: session.Current
    ) -> Response:
        try:
            asset = await store.get_asset(asset_id, signed_in.project_id)
        except errors.NotFound:
            return not_found(request)
        return page(request, "asset_delete.html", signed_in, asset=asset)

    @router.post("/assets/{asset_id}/delete", response_model=None)
    async def delete_asset(asset_id: str, request: Request, signed_in: session.Current) -> Response:
        try:
            asset = await service.delete_asset(store, runtime.blobs, asset_id, signed_in.project_id)
        except errors.NotFound:
            return not_found(request)
        return page(request, "asset_deleted.html", signed_in, asset=asset)

    return router


def _name_of_url(url: str) -> str:
    """An imported asset's default name: the last part of its URL's path."""
    path = url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    last = path.rsplit("/", 1)[-1]
    return last[:500] or "import"


def _playable(asset: assets.Asset) -> bool:
    return asset.phase is assets.AssetPhase.READY and bool(asset.media.get("hls"))


def _source_url(asset: assets.Asset) -> str | None:
    """The published source file (ready assets only), as ``/media`` serves it."""
    source = asset.media.get("source")
    if asset.phase is not assets.AssetPhase.READY or not isinstance(source, str):
        return None
    return media_url(source)


def _source_text(asset: assets.Asset) -> str:
    """Where the asset came from, in words (credentials in a URL left out)."""
    source = asset.source
    kind = source.get("type")
    if kind == "url":
        return f"imported from {fetch.redact_url(str(source.get('url', '')))}"
    if kind == "directUpload":
        return "uploaded"
    if kind == "clip":
        return f"a clip of the asset with playback id {source.get('playbackId', '?')}"
    return str(kind or "unknown")


def _ladder(asset: assets.Asset) -> list[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    """Each rendition of the asset's ladder, with its published MP4 when it has one."""
    mp4s: dict[str, Mapping[str, Any]] = {}
    if asset.phase is assets.AssetPhase.READY:
        for mp4 in asset.media.get("staticMp4s") or []:
            if isinstance(mp4, Mapping) and isinstance(mp4.get("key"), str):
                mp4s[str(mp4.get("name"))] = mp4
    ladder = asset.media.get("renditions") or []
    return [
        (rendition, mp4s.get(str(rendition.get("name"))))
        for rendition in ladder
        if isinstance(rendition, Mapping)
    ]


async def _tasks_of(
    store: taskstore.TaskStore, project_id: str, column: str, asset_id: str
) -> list[tasks.Task]:
    """The project's tasks whose ``column`` is the asset, newest first (at most 50)."""
    page = await store.list_tasks(
        taskstore.Query(
            project_id=project_id,
            limit=50,
            order=(("created_at", True),),
            filters=[taskstore.Filter(field=column, op="eq", value=asset_id)],
        )
    )
    return list(page.items)


# -- the live stream ------------------------------------------------------------------------------
def _sse(event: str, html: str) -> bytes:
    data = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {event}\n{data}\n".encode()


@dataclasses.dataclass(kw_only=True)
class _Followed:
    asset_id: str
    task_id: str | None
    after_event: int
    last: Status | None = None
    finished: bool = False


async def _follow(
    runtime: Runtime, request: Request, signed_in: session.Session, wanted: Sequence[str]
) -> AsyncIterator[bytes]:
    """Each followed asset's status as it changes: one event per phase its task goes through
    (a phase that lasted less than a poll is still shown), then ``done``."""
    store = runtime.store
    loop = asyncio.get_running_loop()
    yield b"retry: 2000\n\n"
    followed: list[_Followed] = []
    for asset_id in wanted:
        try:
            asset = await store.get_asset(asset_id, signed_in.project_id)
        except errors.NotFound:
            continue
        status = await _status(runtime, asset)
        events = await store.list_events(status.task.id) if status.task else []
        item = _Followed(
            asset_id=asset.id,
            task_id=status.task.id if status.task else None,
            after_event=events[-1].id if events else 0,
            last=status,
            finished=status.settled,
        )
        followed.append(item)
        yield _sse(f"asset-{asset.id}", _fragment("_asset_status.html", status=status))
    last_sent = loop.time()
    while not await request.is_disconnected():
        if all(item.finished for item in followed):
            yield _sse("done", "done")
            return
        for item in followed:
            if item.finished:
                continue
            async for status in _news(runtime, signed_in.project_id, item):
                yield _sse(f"asset-{item.asset_id}", _fragment("_asset_status.html", status=status))
                last_sent = loop.time()
        if loop.time() - last_sent >= _KEEPALIVE_S:
            yield b": keep-alive\n\n"
            last_sent = loop.time()
        await asyncio.sleep(_POLL_S)


async def _news(runtime: Runtime, project_id: str, item: _Followed) -> AsyncIterator[Status]:
    """What changed for one followed asset since the last look.

    Every change of an asset that its page shows comes with a row in its task's event log
    (phases, progress, the cancellation of a deletion), so one look at that log tells whether
    there is anything to read again: a page that follows many assets costs one query per asset
    and poll while nothing happens.
    """
    store = runtime.store
    events: list[tasks.TaskEvent] | None = None
    if item.task_id is not None and item.last is not None:
        events = await store.list_events(item.task_id, after_id=item.after_event)
        if not events:
            return
    try:
        asset = await store.get_asset(item.asset_id, project_id)
    except errors.NotFound:
        item.finished = True
        return
    task = await store.task_of_asset(asset.id)
    if task is not None and task.id != item.task_id:
        item.task_id, item.after_event, events = task.id, 0, None
    if events is None:
        events = await store.list_events(task.id, after_id=item.after_event) if task else []
    if events:
        item.after_event = events[-1].id
    # One status per phase the task went through, the last one as it is now.
    shown: list[Status] = []
    for event, following in itertools.pairwise(events):
        if following.phase == event.phase:
            continue
        then = asset.evolve(phase=_asset_phase_at(event.phase, asset.phase))
        shown.append(
            Status(asset=then, task=task, task_phase=event.phase, task_progress=event.progress)
        )
    now = Status(
        asset=asset,
        task=task,
        task_phase=task.phase if task else None,
        task_progress=task.progress if task else None,
    )
    shown.append(now)
    for status in shown:
        if item.last is not None and _same(item.last, status):
            continue
        item.last = status
        yield status
    item.finished = now.settled


def _asset_phase_at(task_phase: tasks.Phase, current: assets.AssetPhase) -> assets.AssetPhase:
    """The phase the asset had while its task was in ``task_phase`` (for a phase shown late)."""
    before = {
        tasks.Phase.PENDING: assets.AssetPhase.UPLOADING,
        tasks.Phase.WAITING: assets.AssetPhase.WAITING,
    }
    return assets.mirror_phase(task_phase) or before.get(task_phase, current)


def _same(a: Status, b: Status) -> bool:
    return (
        a.asset.phase,
        a.asset.progress,
        a.asset.error_message,
        a.task_phase,
        a.task_progress,
    ) == (b.asset.phase, b.asset.progress, b.asset.error_message, b.task_phase, b.task_progress)
