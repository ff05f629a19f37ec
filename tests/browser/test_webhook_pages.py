"""The webhook pages in a real browser, against a real ``mediatasks serve`` and a real receiver:
create, edit and delete a webhook, see its deliveries arrive in the log without reloading,
filter the log, and send a delivery again.  The secret is never shown after it is set."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests import processes, receiver
from tests.browser.conftest import Key, sign_in, watched_context
from tests.browser.layout import assert_fits_a_phone

pytestmark = pytest.mark.slow

SECRET = "browser-test-secret-4f1c"


def _wait(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _request_upload(server: processes.Server, secret: str, name: str) -> str:
    answer = httpx.post(
        f"{server.base_url}/api/asset/request-upload",
        json={"name": name},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    asset_id: str = answer.json()["asset"]["id"]
    return asset_id


def _log_rows(page: Any) -> Any:
    return page.locator("#delivery-log tbody tr")


def test_create_edit_resend_and_delete_a_webhook(
    signed_in: Any,
    server: processes.Server,
    new_key: Callable[..., Key],
    screenshot: Callable[[Any, str], object],
    assert_accessible: Callable[[Any], list[dict[str, Any]]],
) -> None:
    page = signed_in
    with receiver.receiving(SECRET) as hook_receiver:
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
        page.wait_for_url(re.compile(r"/webhooks$"))
        assert page.get_by_role("heading", name="Webhooks", exact=True).is_visible()
        screenshot(page, "webhooks-list-empty")
        assert assert_accessible(page) == []  # not even a minor violation

        page.get_by_role("link", name="New webhook").click()
        page.wait_for_url(re.compile(r"/webhooks/new$"))
        # A URL that is not http(s) is refused with a message, and nothing is created.
        page.get_by_label("Name").fill("Receiver")
        page.get_by_label("URL").evaluate("input => { input.type = 'text'; }")
        page.get_by_label("URL").fill("ftp://127.0.0.1/hook")
        page.get_by_role("button", name="Create webhook").click()
        assert "must start with http:// or https://" in page.get_by_role("alert").inner_text()
        assert page.get_by_label("URL").get_attribute("aria-invalid") == "true"
        screenshot(page, "webhook-form-refused")
        assert assert_accessible(page) == []  # not even a minor violation

        page.get_by_label("URL").fill(hook_receiver.url)
        for box in page.locator("input[name=events]").all():
            box.uncheck()
        page.get_by_label("asset.created").check()
        page.get_by_label("Shared secret").fill(SECRET)
        page.get_by_role("button", name="Create webhook").click()
        page.wait_for_url(re.compile(r"/webhooks/[0-9a-f-]+\?saved=created$"))
        hook_url = page.url.split("?")[0]
        assert "The webhook was created" in page.get_by_role("status").first.inner_text()
        assert SECRET not in page.content()
        assert page.get_by_text("yes, with a shared secret (never shown)").is_visible()
        assert page.get_by_text("Nothing delivered yet").is_visible()

        # Edit: a new name and one more event; the secret, left empty, stays.
        page.get_by_role("link", name="Edit").click()
        page.wait_for_url(re.compile(r"/edit$"))
        assert SECRET not in page.content()
        assert page.get_by_label("Shared secret (new)").input_value() == ""
        screenshot(page, "webhook-edit")
        assert assert_accessible(page) == []  # not even a minor violation
        page.get_by_label("Name").fill("Receiver on loopback")
        page.get_by_label("asset.deleted").check()
        page.get_by_role("button", name="Save changes").click()
        page.wait_for_url(re.compile(r"\?saved=updated$"))
        assert page.get_by_role("heading", name="Webhook Receiver on loopback").is_visible()
        assert page.get_by_text("asset.created, asset.deleted").is_visible()

        # An event: its delivery appears in the log without a reload, signed with the secret.
        asset_id = _request_upload(server, server.key, "for the webhook")
        _wait(lambda: len(hook_receiver.requests) >= 1)
        body, valid = hook_receiver.requests[0]
        assert valid and body["event"] == "asset.created"
        assert body["payload"]["asset"]["id"] == asset_id
        rows = _log_rows(page)
        rows.first.wait_for(timeout=20_000)  # the log refreshes itself
        assert rows.count() == 1

        # While the keyboard focus is inside the log, its refreshes are held back (a new log
        # would lose the focus); they come back once the focus leaves.
        page.evaluate(
            """() => {
                window.logPolls = 0;
                document.addEventListener("htmx:beforeRequest", (event) => {
                    if (event.detail.elt.id === "webhook-log") window.logPolls += 1;
                });
                document.getElementById("webhook-log").dataset.marked = "yes";
            }"""
        )
        rows.first.get_by_role("button", name=re.compile("^Resend")).focus()
        page.wait_for_function("() => window.logPolls >= 2", timeout=15_000)
        assert page.locator("#webhook-log").get_attribute("data-marked") == "yes"
        page.evaluate("() => document.activeElement.blur()")
        page.wait_for_function(
            "() => !document.getElementById('webhook-log').dataset.marked", timeout=15_000
        )
        assert "asset.created" in rows.first.inner_text()
        assert "succeeded" in rows.first.inner_text()
        assert "200" in rows.first.inner_text()
        screenshot(page, "webhook-log")
        assert_fits_a_phone(page)
        assert assert_accessible(page) == []  # not even a minor violation

        # A failed delivery, then the filter keeps each kind apart.
        hook_receiver.status = 503
        _request_upload(server, server.key, "while the receiver is down")
        _wait(lambda: len(hook_receiver.requests) >= 2)
        page.wait_for_function(
            "() => document.querySelectorAll('#delivery-log tbody tr').length >= 2", timeout=20_000
        )
        page.get_by_label("Show").select_option("failed")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url(re.compile(r"status=failed"))
        assert rows.count() >= 1
        assert all("failed" in text and "503" in text for text in rows.all_inner_texts())
        page.get_by_label("Show").select_option("succeeded")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url(re.compile(r"status=succeeded"))
        assert rows.count() == 1
        assert "succeeded" in rows.first.inner_text()
        screenshot(page, "webhook-log-succeeded")

        # Resend the first delivery: the receiver gets the same event again, and the page says so.
        hook_receiver.status = 200
        seen = len(hook_receiver.requests)
        first_event = body["id"]
        rows.first.get_by_role("button", name=re.compile("^Resend")).click()
        page.wait_for_url(re.compile(r"resent="))
        # (The failed delivery's own retry may arrive too: the sender keeps trying it.)
        _wait(lambda: any(b["id"] == first_event for b, _ in hook_receiver.requests[seen:]))
        [(again, valid_again)] = [
            (b, ok) for b, ok in hook_receiver.requests[seen:] if b["id"] == first_event
        ]
        assert valid_again and again["event"] == "asset.created"
        assert "Sent again: succeeded" in page.get_by_role("status").first.inner_text()

        # Another project's key sees none of it.
        other = new_key()
        with watched_context(page.context.browser, base_url=server.base_url) as other_context:
            other_page = other_context.new_page()
            sign_in(other_page, other.secret)
            other_page.goto("/webhooks")
            assert other_page.get_by_text("No webhook yet").is_visible()
            answer = other_page.goto(hook_url)
            assert answer is not None and answer.status == 404

        # Delete, after saying so.
        page.goto(hook_url)
        page.get_by_text("Delete…").click()
        page.get_by_role("button", name="Delete this webhook").click()
        page.wait_for_url(re.compile(r"/webhooks\?deleted="))
        assert "The webhook was deleted" in page.get_by_role("status").inner_text()
        hook_id = hook_url.rsplit("/", 1)[1]
        assert page.locator(f"a[href='/webhooks/{hook_id}']").count() == 0
        screenshot(page, "webhooks-list-deleted")
        assert assert_accessible(page) == []  # not even a minor violation
        answer = page.goto(hook_url)
        assert answer is not None and answer.status == 404
        listed = httpx.get(
            f"{server.base_url}/api/webhook",
            headers={"Authorization": f"Bearer {server.key}"},
            timeout=10,
        ).json()
        assert hook_id not in [hook["id"] for hook in listed]


def test_a_forged_delete_is_refused(signed_in: Any, server: processes.Server) -> None:
    page = signed_in
    created = httpx.post(
        f"{server.base_url}/api/webhook",
        json={"name": "kept", "url": "http://127.0.0.1:9/hook", "events": ["asset.created"]},
        headers={"Authorization": f"Bearer {server.key}"},
        timeout=10,
    ).json()
    # The browser's own cookie, but no token: what another site's form would send.
    answer = page.request.post(f"/webhooks/{created['id']}/delete", form={"csrf": "wrong"})
    assert answer.status == 403
    still = httpx.get(
        f"{server.base_url}/api/webhook/{created['id']}",
        headers={"Authorization": f"Bearer {server.key}"},
        timeout=10,
    )
    assert still.status_code == 200
    httpx.delete(
        f"{server.base_url}/api/webhook/{created['id']}",
        headers={"Authorization": f"Bearer {server.key}"},
        timeout=10,
    )
