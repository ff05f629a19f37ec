"""``/webhooks``: a project's webhooks (list, create, edit, delete) and each one's delivery log,
filtered by outcome, with a button to send a logged event again.

The pages call ``webhooks.service``, as ``/api/webhook`` does.  A webhook's shared secret is
write-only here too: a form can set, replace or remove it, no page shows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from mediatasks import errors, taskstore
from mediatasks.api.runtime import Runtime
from mediatasks.web import render, session
from mediatasks.webhooks import message
from mediatasks.webhooks import service as webhooks_service

__all__ = ["LOG_PAGE", "OUTCOMES", "create_router", "describe_response"]

#: The delivery log's filter: its values, what each keeps (``success``), and its label.
OUTCOMES: Final[Mapping[str, tuple[bool | None, str]]] = {
    "all": (None, "All attempts"),
    "succeeded": (True, "Succeeded"),
    "failed": (False, "Failed"),
}
#: How many attempts a page of the log shows.
LOG_PAGE: Final = 50
#: How often the log refreshes itself, in seconds.
LOG_REFRESH_S: Final = 3
_MAX_NAME: Final = 200


def _form_value(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


class _Input:
    """A webhook form as sent, with what is wrong with it (``problems``, by field)."""

    def __init__(self, form: FormData) -> None:
        self.name = _form_value(form, "name")
        self.url = _form_value(form, "url")
        self.events = [e for e in form.getlist("events") if isinstance(e, str)]
        secret = form.get("shared_secret")
        self.shared_secret = secret if isinstance(secret, str) and secret else None
        self.remove_secret = _form_value(form, "remove_secret") == "yes"
        self.problems: dict[str, str] = {}
        if not self.name:
            self.problems["name"] = "Give the webhook a name."
        elif len(self.name) > _MAX_NAME:
            self.problems["name"] = f"A name has at most {_MAX_NAME} characters."
        if not self.url.startswith(("http://", "https://")):
            self.problems["url"] = "The URL must start with http:// or https://."
        unknown = sorted(set(self.events) - set(message.EVENTS))
        if unknown:
            self.problems["events"] = f"Unknown events: {', '.join(unknown)}."

    def values(self) -> dict[str, Any]:
        """What the form shows again (never the secret)."""
        return {"name": self.name, "url": self.url, "events": self.events}


def _outcome(value: str | None) -> str:
    if value is not None and value in OUTCOMES:
        return value
    if value:
        raise render.PageError(400, f"Unknown filter {value!r}: use all, succeeded or failed.")
    return "all"


def create_router(runtime: Runtime) -> APIRouter:
    """``/webhooks`` and the pages under it."""
    router = APIRouter()
    store = runtime.store

    async def find(webhook_id: str, current: session.Session) -> taskstore.Webhook:
        try:
            return await store.get_webhook(webhook_id, current.project_id)
        except errors.NotFound:
            raise render.PageError(404, "This webhook does not exist (anymore).") from None

    def form_page(
        request: Request,
        current: session.Session,
        *,
        values: Mapping[str, Any],
        problems: Mapping[str, str],
        hook: taskstore.Webhook | None = None,
        status_code: int = 200,
    ) -> Response:
        return render.render(
            request,
            "webhook_form.html",
            current,
            status_code=status_code,
            hook=hook,
            has_secret=hook is not None and webhooks_service.has_secret(hook),
            values=values,
            problems=problems,
            events=message.EVENTS,
        )

    async def log_context(
        hook: taskstore.Webhook, current: session.Session, outcome: str
    ) -> dict[str, Any]:
        entries = await webhooks_service.delivery_log(
            store, hook.id, current.project_id, limit=LOG_PAGE, success=OUTCOMES[outcome][0]
        )
        return {
            "hook": hook,
            "entries": entries,
            "outcome": outcome,
            "outcomes": OUTCOMES,
            "log_page": LOG_PAGE,
            "refresh_s": LOG_REFRESH_S,
            "describe_response": describe_response,
        }

    @router.get("/webhooks")
    async def list_webhooks(request: Request, current: session.Current) -> Response:
        hooks = await store.list_webhooks(current.project_id, limit=1000)
        return render.render(
            request,
            "webhooks.html",
            current,
            hooks=hooks,
            deleted=request.query_params.get("deleted", ""),
        )

    @router.get("/webhooks/new")
    async def new_webhook(request: Request, current: session.Current) -> Response:
        values = {"name": "", "url": "", "events": list(message.EVENTS)}
        return form_page(request, current, values=values, problems={})

    @router.post("/webhooks")
    async def create_webhook(request: Request, current: session.Current) -> Response:
        sent = _Input(await request.form())
        if not sent.problems:
            try:
                hook = await webhooks_service.create_webhook(
                    store,
                    runtime.settings,
                    project_id=current.project_id,
                    name=sent.name,
                    url=sent.url,
                    events=sent.events,
                    shared_secret=sent.shared_secret,
                )
            except errors.InvalidInput as exc:
                sent.problems["url"] = exc.message
            else:
                return RedirectResponse(f"/webhooks/{hook.id}?saved=created", status_code=303)
        return form_page(
            request, current, values=sent.values(), problems=sent.problems, status_code=422
        )

    @router.get("/webhooks/{webhook_id}")
    async def show_webhook(
        webhook_id: str, request: Request, current: session.Current, status: str | None = None
    ) -> Response:
        hook = await find(webhook_id, current)
        return render.render(
            request,
            "webhook.html",
            current,
            has_secret=webhooks_service.has_secret(hook),
            saved=request.query_params.get("saved", ""),
            resent=request.query_params.get("resent", ""),
            **await log_context(hook, current, _outcome(status)),
        )

    @router.get("/webhooks/{webhook_id}/log")
    async def webhook_log(
        webhook_id: str, request: Request, current: session.Current, status: str | None = None
    ) -> Response:
        """The delivery log alone: what the page refreshes itself with."""
        hook = await find(webhook_id, current)
        context = await log_context(hook, current, _outcome(status))
        return render.render(request, "_webhook_log.html", current, **context)

    @router.get("/webhooks/{webhook_id}/edit")
    async def edit_webhook(webhook_id: str, request: Request, current: session.Current) -> Response:
        hook = await find(webhook_id, current)
        values = {"name": hook.name, "url": hook.url, "events": list(hook.events)}
        return form_page(request, current, values=values, problems={}, hook=hook)

    @router.post("/webhooks/{webhook_id}")
    async def update_webhook(
        webhook_id: str, request: Request, current: session.Current
    ) -> Response:
        hook = await find(webhook_id, current)
        sent = _Input(await request.form())
        if not sent.problems:
            secret = "" if sent.remove_secret else sent.shared_secret  # None keeps it
            try:
                await webhooks_service.update_webhook(
                    store,
                    runtime.settings,
                    hook.id,
                    project_id=current.project_id,
                    name=sent.name,
                    url=sent.url,
                    events=sent.events,
                    shared_secret=secret,
                )
            except errors.NotFound:
                raise render.PageError(404, "This webhook does not exist (anymore).") from None
            except errors.InvalidInput as exc:
                sent.problems["url"] = exc.message
            else:
                return RedirectResponse(f"/webhooks/{hook.id}?saved=updated", status_code=303)
        return form_page(
            request,
            current,
            values=sent.values(),
            problems=sent.problems,
            hook=hook,
            status_code=422,
        )

    @router.post("/webhooks/{webhook_id}/delete")
    async def delete_webhook(webhook_id: str, current: session.Current) -> Response:
        try:
            gone = await webhooks_service.delete_webhook(store, webhook_id, current.project_id)
        except errors.NotFound:
            raise render.PageError(404, "This webhook does not exist (anymore).") from None
        return RedirectResponse(f"/webhooks?deleted={gone.id}", status_code=303)

    @router.post("/webhooks/{webhook_id}/log/{log_id}/resend")
    async def resend(
        webhook_id: str, log_id: str, request: Request, current: session.Current
    ) -> Response:
        try:
            entry = await webhooks_service.resend(
                store, runtime.settings, webhook_id, log_id, current.project_id
            )
        except errors.NotFound:
            raise render.PageError(404, "This delivery does not exist (anymore).") from None
        return RedirectResponse(f"/webhooks/{webhook_id}?resent={entry.id}", status_code=303)

    return router


def describe_response(entry: taskstore.WebhookLogEntry) -> str:
    """What came back, in words: ``200 OK``, or the error when nothing answered."""
    response = entry.response
    status = response.get("status")
    text = response.get("statusText") or response.get("error") or ""
    if status is None:
        return f"No answer: {text}" if text else "No answer"
    return f"{status} {text}".strip()
