"""Rendering the dashboard's pages: Jinja2 templates with what every page needs.

``render(request, template, session, **context)`` gives every template ``session`` (or
``None``), ``csrf`` (the session's token), ``csrf_field()`` (the hidden form field),
``vendor(package, file)`` (the URL of a browser library's file), ``static(file)`` (the URL of one
of the project's own files), ``missing_vendor`` (the one sentence shown when the browser
libraries are not installed) and ``path`` (for the navigation's current item).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from mediatasks import __version__
from mediatasks.web import files

if TYPE_CHECKING:
    from mediatasks.web.session import Session

__all__ = ["CONTENT_SECURITY_POLICY", "TEMPLATES", "PageError", "error_response", "render"]

_HERE: Final = Path(__file__).parent
#: The dashboard's templates.
TEMPLATES: Final = Jinja2Templates(directory=_HERE / "templates")
TEMPLATES.env.globals["version"] = __version__
TEMPLATES.env.globals["vendor"] = files.vendor_url
TEMPLATES.env.globals["static"] = files.static_url

#: What a page may load and do: only this origin's own files, and no inline script or style
#: (the templates have none: code is in ``static/*.js``, data for it in ``<script
#: type="application/json">``, which is not run; htmx's own indicator style is turned off in
#: ``base.html``).  hls.js plays through a ``blob:`` URL (MediaSource) and runs its demuxer in a
#: worker made from a ``blob:`` URL; EventSource, tus and htmx only speak to this origin.
CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "media-src 'self' blob:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


class PageError(Exception):
    """A page that cannot be shown: answered with ``status`` and a page saying ``message``."""

    def __init__(
        self, status: int, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def response(self, request: Request) -> Response:
        """The page that answers this error."""
        return error_response(request, self.status, self.message, headers=self.headers)


def render(
    request: Request,
    template: str,
    session: Session | None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> Response:
    """The page ``template`` for ``session`` (``None`` on pages for signed-out people)."""
    csrf = session.csrf if session is not None else str(context.get("csrf_token", ""))

    def csrf_field() -> Markup:
        return Markup(f'<input type="hidden" name="csrf" value="{html.escape(csrf)}">')

    values: dict[str, Any] = {
        "session": session,
        "csrf": csrf,
        "csrf_field": csrf_field,
        "missing_vendor": files.missing_message(),
        "path": request.url.path,
        **context,
    }
    response = TEMPLATES.TemplateResponse(
        request, template, values, status_code=status_code, headers=dict(headers or {})
    )
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if session is not None:  # a project's data is not kept by the browser's cache
        response.headers.setdefault("Cache-Control", "no-store")
    return response


_TITLES: Final = {
    400: "Bad request",
    401: "Not signed in",
    403: "Refused",
    404: "Not found",
    405: "Not allowed",
    409: "Conflict",
    422: "Cannot do that",
}


def error_response(
    request: Request,
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A page saying what went wrong (``status`` 4xx or 5xx), with the layout when it can."""
    session = request.scope.get("mediatasks.session") or None
    title = _TITLES.get(status, "Something went wrong" if status >= 500 else "Cannot show this")
    return render(
        request,
        "error.html",
        session,
        status_code=status,
        headers=headers,
        title=title,
        message=message,
    )
