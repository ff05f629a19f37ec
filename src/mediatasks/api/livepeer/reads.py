"""The two reads a client makes most, ``GET /api/task/{id}`` and ``GET /api/task``, answered
below FastAPI.

A client waiting for a task polls it, or the page of its tasks, and each poll is one store read:
the rest of a request's cost is the framework's.  Through FastAPI a task read went through two
routers, the ``/api`` mount, the Livepeer application's middleware and its dependency solving,
about twice the CPU of the read and the rendering together (``docs/benchmarks.md``, "The HTTP
API").  ``TaskReads``, an ASGI middleware of the whole application inside ``HttpMetrics``,
answers those two requests itself with the same functions as the FastAPI routes
(``one_task``, ``task_page``): the key check (``auth.project_of``), one store read, the same
rendering and the same error answers (``answers``).  The routes stay, for the OpenAPI
description and for what ``TaskReads`` passes on.

It passes on to the application, unchanged, every request that is not exactly one of the two:
another method or path, a trailing slash, and a path or query with a control character (the
Livepeer application's ``RequestGuard`` answers those).  For what it answers it sets the scope as
the mount and the router would have (``root_path``, ``route``, ``path_params``), so that
``HttpMetrics`` counts it under its route (``/api/task/{task_id}``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from mediatasks.api.livepeer import answers, auth, guard, paging, views, wire
from mediatasks.api.runtime import Runtime

__all__ = ["TaskReads", "one_task", "task_page"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Where the Livepeer application is mounted, and its two paths.
PREFIX: Final = "/api"
_LIST_PATH: Final = "/task"
_ONE_PATH: Final = "/task/{task_id}"
_TYPES: Final = sorted(wire.VISIBLE_TYPES)


#: ``str(request.base_url)`` by what it is made of (scheme, ``Host``, server address, the
#: application's root path): one per name the service is reached by, not one a request.
_BASE_URLS: dict[tuple[Any, ...], str] = {}
_MAX_BASE_URLS: Final = 64


def _base_url(runtime: Runtime, request: Request) -> str:
    scope = request.scope
    host = next((value for name, value in scope["headers"] if name == b"host"), None)
    root = scope.get("app_root_path", scope.get("root_path", ""))
    key = (scope.get("scheme"), host, scope.get("server"), root)
    found = _BASE_URLS.get(key)
    if found is None:
        if len(_BASE_URLS) >= _MAX_BASE_URLS:  # Host is the client's to choose
            _BASE_URLS.clear()
        found = _BASE_URLS[key] = str(request.base_url)
    return runtime.base_url(found)


async def one_task(runtime: Runtime, request: Request, task_id: str, project: str) -> Response:
    """``GET /task/{task_id}``: the task in Livepeer's shape, with its asset snapshot."""
    view = await views.visible_view(runtime, task_id, project)
    return views.Json(views.render_view(view, _base_url(runtime, request)))


async def task_page(runtime: Runtime, request: Request, project: str) -> Response:
    """``GET /task``: a page of the project's tasks, with ``Link`` and ``X-Total-Count``."""
    query = paging.list_query(request, project, paging.TASK_FIELDS, types=_TYPES)
    page = await runtime.store.view_tasks(query)
    base = _base_url(runtime, request)
    answer = views.Json([views.render_view(view, base) for view in page.items])
    paging.finish_page(request, answer, query, page)
    return answer


def _route(routes: Sequence[Any], path: str) -> APIRoute | None:
    """The GET route of ``path`` among ``routes`` and the routers they include."""
    for route in routes:
        if isinstance(route, APIRoute) and route.path == path and "GET" in (route.methods or ()):
            return route
        included = getattr(route, "original_router", None)  # FastAPI's include_router
        found = None if included is None else _route(included.routes, path)
        if found is not None:
            return found
    return None


def _get_route(app: FastAPI, path: str) -> APIRoute:
    found = _route(app.routes, path)
    if found is None:
        raise LookupError(f"the Livepeer application has no GET {path}")
    return found


class TaskReads:
    """ASGI middleware: answers ``GET /api/task/{id}`` and ``GET /api/task``; see the module."""

    def __init__(self, app: ASGIApp, runtime: Runtime, livepeer: FastAPI) -> None:
        self.app = app
        self.runtime = runtime
        self._one_route = _get_route(livepeer, _ONE_PATH)
        self._list_route = _get_route(livepeer, _LIST_PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if not path.startswith("/api/task"):
            await self.app(scope, receive, send)
            return
        rest = path[len("/api/task") :]
        task_id = rest[1:]
        if rest == "":
            route, params = self._list_route, {}
        elif rest[0] == "/" and task_id and "/" not in task_id:
            route, params = self._one_route, {"task_id": task_id}
        else:
            await self.app(scope, receive, send)
            return
        try:
            guard.check_target(scope)
        except guard.Refused:
            await self.app(scope, receive, send)  # the guard answers it
            return
        # As the mount and the router leave it: HttpMetrics reads the route from here.
        root_path = scope.get("root_path", "")
        scope["app_root_path"] = scope.get("app_root_path", root_path)
        scope["root_path"] = root_path + PREFIX
        scope["route"] = route
        scope["path_params"] = params
        await self._answer(scope, receive, send, task_id if params else None)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, task_id: str | None
    ) -> None:
        request = Request(scope, receive)
        response: Response
        try:
            project = await auth.project_of(self.runtime, request.headers.get("authorization"))
            if task_id is None:
                response = await task_page(self.runtime, request, project)
            else:
                response = await one_task(self.runtime, request, task_id, project)
        except Exception as exc:
            known = answers.error_of(exc)
            if known is None:
                # As the application's handler of unexpected errors: a 500, and the error goes
                # on to the server, which logs it.
                answers.log.exception("unexpected error", exc_info=exc)
                await answers.errors_response(500, "Internal server error")(scope, receive, send)
                raise
            response = known
        await response(scope, receive, send)
