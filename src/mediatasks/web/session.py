"""Signing in to the dashboard with an API key, signing out, and forged requests refused.

A session is a cookie signed with the service's secret key (``itsdangerous``), holding the API
key's id, its project and a token against cross-site request forgery.  It is HttpOnly,
SameSite=Strict, Secure when the request is https or the public URL is, and expires after
:data:`LIFETIME_S`.  The key is looked up in the task store on every request, so that a revoked
key's session ends at its next request.  A session sees only its key's project, as the API does.

Every state-changing request (``POST``, ``PUT``, ``PATCH``, ``DELETE``) carries the session's
token, as the form field ``csrf`` or the header ``X-CSRF-Token``, or is refused with 403.  The
sign-in form, which has no session yet, carries the token of a short-lived cookie of its own
(a double-submit token), so that another site cannot sign a browser in to its own key either.

Failed sign-ins are limited per client address (``sign_in_max_failures`` within
``sign_in_window_s``; :mod:`mediatasks.web.throttle`): past the limit the sign-in page answers
429 with ``Retry-After``, whatever key it is sent.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import math
import secrets
import urllib.parse
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from mediatasks import signing
from mediatasks.api.runtime import Runtime
from mediatasks.web import render, throttle

__all__ = [
    "COOKIE",
    "LIFETIME_S",
    "Current",
    "Session",
    "check_csrf",
    "create_router",
    "current_session",
    "still_live",
]

log = logging.getLogger(__name__)

#: The session cookie's name.
COOKIE: Final = "mediatasks_session"
#: The sign-in form's own cookie (its token against forged sign-ins).
SIGN_IN_COOKIE: Final = "mediatasks_sign_in"
#: How long a session lasts after signing in.
LIFETIME_S: Final = 12 * 3600
#: How long a sign-in form may stay open.
_SIGN_IN_LIFETIME_S: Final = 3600
_SALT: Final = "mediatasks-dashboard-session"
_SIGN_IN_SALT: Final = "mediatasks-dashboard-sign-in"
_CHANGES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Session:
    """Who is signed in: an API key of one project, and the session's CSRF token."""

    project_id: str
    key_id: str
    csrf: str


def _serializer(runtime: Runtime, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(signing.load_secret_key(runtime.settings), salt=salt)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _secure(request: Request, runtime: Runtime) -> bool:
    """Whether cookies get ``Secure``: the request came over https, or the public URL is."""
    public = runtime.settings.public_url or ""
    return request.url.scheme == "https" or public.lower().startswith("https:")


def _set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int, path: str = "/"
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=_secure(request, _runtime(request)),
    )


def _clear_cookie(response: Response, request: Request, name: str, path: str = "/") -> None:
    response.delete_cookie(
        name,
        path=path,
        httponly=True,
        samesite="strict",
        secure=_secure(request, _runtime(request)),
    )


def _safe_next(target: str | None) -> str:
    """A local path to go to after signing in (never another site)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


class SignInRequired(render.PageError):
    """No valid session: the browser is sent to the sign-in page."""

    def __init__(self, request: Request, reason: str = "") -> None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        current = request.headers.get("HX-Current-URL")
        if request.headers.get("HX-Request") and current:  # back to the page, not its part
            parts = urllib.parse.urlsplit(current)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        query = {"next": _safe_next(target)}
        if reason:
            query["reason"] = reason
        location = "/sign-in?" + urllib.parse.urlencode(query)
        self.location = location
        # htmx follows a redirect inside its request and would swap the sign-in page into a
        # part of the page: it is told to load the sign-in page instead.
        self.htmx = bool(request.headers.get("HX-Request"))
        super().__init__(401 if self.htmx else 303, "Please sign in.")
        self.clear_cookie = request.cookies.get(COOKIE) is not None

    def response(self, request: Request) -> Response:
        answer: Response
        if self.htmx:
            answer = Response(
                status_code=401, headers={"HX-Redirect": self.location, "Cache-Control": "no-store"}
            )
        else:
            answer = RedirectResponse(
                self.location, status_code=303, headers={"Cache-Control": "no-store"}
            )
        if self.clear_cookie:
            _clear_cookie(answer, request, COOKIE)
        return answer


def _read_cookie(request: Request) -> Session | None:
    """The session the cookie names, if its signature is good and it has not expired."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data: Any = _serializer(_runtime(request), _SALT).loads(raw, max_age=LIFETIME_S)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    fields = (data.get("p"), data.get("k"), data.get("c"))
    if not all(isinstance(value, str) and value for value in fields):
        return None
    return Session(project_id=data["p"], key_id=data["k"], csrf=data["c"])


async def optional_session(request: Request) -> Session | None:
    """The live session of the request, or ``None`` (no cookie, a bad or expired one, or a key
    that is revoked or gone)."""
    cached = request.scope.get("mediatasks.session", False)
    if cached is not False:
        found: Session | None = cached
        return found
    session = _read_cookie(request)
    if session is not None:
        keys = await _runtime(request).store.list_api_keys(session.project_id)
        live = any(key.id == session.key_id and key.revoked_at is None for key in keys)
        if not live:
            session = None
    request.scope["mediatasks.session"] = session
    return session


async def still_live(request: Request) -> bool:
    """Whether the request's session lives still (read again, not from the request's cache):
    for a long request, such as a live stream, that must end when its key is revoked or its
    session expires."""
    request.scope.pop("mediatasks.session", None)
    return await optional_session(request) is not None


async def current_session(request: Request) -> Session:
    """The page's session; without a live one, the browser is sent to ``/sign-in``."""
    session = await optional_session(request)
    if session is None:
        reason = "expired" if request.cookies.get(COOKIE) else ""
        raise SignInRequired(request, reason)
    return session


#: The signed-in session of a page (a dependency).
Current = Annotated[Session, Depends(current_session)]


async def check_csrf(request: Request) -> None:
    """Refuse (403) a state-changing request without the right token against forgery."""
    if request.method not in _CHANGES:
        return
    sent = request.headers.get("X-CSRF-Token", "")
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf")
        sent = value if isinstance(value, str) else ""
    if request.url.path == "/sign-in":
        expected = _sign_in_token(request)
    else:
        session = await optional_session(request)
        if session is None:
            raise SignInRequired(request, "expired")
        expected = session.csrf
    if not expected or not sent or not hmac.compare_digest(sent, expected):
        raise render.PageError(
            403,
            "This form was not sent from this dashboard, or it has expired. "
            "Go back, reload the page and try again.",
        )


def _sign_in_token(request: Request) -> str:
    raw = request.cookies.get(SIGN_IN_COOKIE, "")
    try:
        token: Any = _serializer(_runtime(request), _SIGN_IN_SALT).loads(
            raw, max_age=_SIGN_IN_LIFETIME_S
        )
    except BadSignature:
        return ""
    return token if isinstance(token, str) else ""


_REASONS: Final = {
    "expired": "Your session has ended (it expired, or its API key was revoked). Sign in again.",
    "signed-out": "You are signed out.",
}


def create_router(runtime: Runtime) -> APIRouter:
    """``/sign-in`` and ``/sign-out``."""
    router = APIRouter()
    failures = throttle.FailureWindow(
        max_failures=runtime.settings.sign_in_max_failures,
        window_s=runtime.settings.sign_in_window_s,
    )

    def sign_in_page(
        request: Request,
        *,
        next_path: str,
        message: str = "",
        status_code: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        token = secrets.token_urlsafe(24)
        response = render.render(
            request,
            "sign_in.html",
            None,
            status_code=status_code,
            headers=headers,
            csrf_token=token,
            next_path=_safe_next(next_path),
            error=message,
            notice=_REASONS.get(request.query_params.get("reason", ""), ""),
        )
        signed = _serializer(runtime, _SIGN_IN_SALT).dumps(token)
        _set_cookie(response, request, SIGN_IN_COOKIE, signed, _SIGN_IN_LIFETIME_S, "/sign-in")
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.get("/sign-in")
    async def sign_in_form(request: Request, next: str = "/") -> Response:
        if await optional_session(request) is not None:
            return RedirectResponse(_safe_next(next), status_code=303)
        return sign_in_page(request, next_path=next)

    @router.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        form = await request.form()
        secret = form.get("api_key")
        target = form.get("next")
        next_path = target if isinstance(target, str) else "/"
        address = request.client.host if request.client else ""
        wait_s = failures.retry_after_s(address)
        if wait_s > 0:
            retry_after = math.ceil(wait_s)
            return sign_in_page(
                request,
                next_path=next_path,
                message=(
                    f"Too many failed sign-ins from your address: try again in {retry_after} s."
                ),
                status_code=429,
                headers={"Retry-After": str(retry_after)},
            )
        key = None
        if isinstance(secret, str) and secret.strip():
            key = await runtime.store.authenticate(secret.strip())
        if key is None:
            failures.record_failure(address)
            if failures.retry_after_s(address) > 0:
                log.warning(
                    "dashboard sign-in: %d failures from %s, refused for %g s",
                    failures.max_failures,
                    address,
                    failures.window_s,
                )
            return sign_in_page(
                request,
                next_path=next_path,
                message="That API key is not valid: it may be mistyped or revoked.",
                status_code=401,
            )
        value = _serializer(runtime, _SALT).dumps(
            {"p": key.project_id, "k": key.id, "c": secrets.token_urlsafe(24)}
        )
        response = RedirectResponse(_safe_next(next_path), status_code=303)
        _set_cookie(response, request, COOKIE, value, LIFETIME_S)
        _clear_cookie(response, request, SIGN_IN_COOKIE, "/sign-in")
        log.info("dashboard sign-in with key %s of project %s", key.id, key.project_id)
        return response

    @router.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        response = RedirectResponse("/sign-in?reason=signed-out", status_code=303)
        _clear_cookie(response, request, COOKIE)
        return response

    return router
