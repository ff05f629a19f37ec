"""The dashboard: pages for people, rendered on the server, at ``/`` of every API process.

Layout (keep it when adding an area):

* Each area of the dashboard is one module with ``create_router(runtime) -> APIRouter``; its
  pages take the signed-in :class:`~mediatasks.web.session.Session` through the
  ``session.Current`` dependency (which redirects to ``/sign-in`` without one) and render with
  :func:`mediatasks.web.render.render`.  To add an area, import its module below and add it to
  ``_AREAS``.
* Every ``POST``, ``PUT``, ``PATCH`` and ``DELETE`` under this router is checked against
  cross-site request forgery before its handler runs (``session.check_csrf``): a form sends the
  token as the field ``csrf`` (``{{ csrf_field() }}`` in a template), htmx sends the
  ``X-CSRF-Token`` header that ``base.html`` sets on ``<body hx-headers=...>``.
* No SQL and no business rules here: pages call ``mediatasks.service`` or the task store's public
  methods, as ``/api`` does, then render.
* Templates live in ``web/templates/`` (``base.html`` with the blocks ``title`` and ``content``;
  ``_macros.html`` with ``phase_badge`` and ``progress_bar``), the project's own CSS and JS in
  ``web/static/`` (``/static/...``), and the browser libraries from npm (``web/package.json``,
  installed by ``./scripts/setup``) under ``/static/vendor/<package>/<file in its dist/>``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from mediatasks.api.runtime import Runtime
from mediatasks.web import assets as assets
from mediatasks.web import files as files
from mediatasks.web import overview as overview
from mediatasks.web import scores as scores
from mediatasks.web import session as session
from mediatasks.web import tasks as tasks
from mediatasks.web import webhooks as webhooks

__all__ = ["create_web_router"]

#: The areas of the dashboard, each a module with ``create_router(runtime)``.
_AREAS = (
    session,
    files,
    overview,
    tasks,
    webhooks,
    scores,
    assets,
)


def create_web_router(runtime: Runtime) -> APIRouter:
    """Every page of the dashboard and its static files, for ``app.include_router``."""
    router = APIRouter(include_in_schema=False, dependencies=[Depends(session.check_csrf)])
    for area in _AREAS:
        router.include_router(area.create_router(runtime))
    return router
