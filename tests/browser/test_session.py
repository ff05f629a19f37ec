"""Signing in to the dashboard, signing out, revoked keys, forged forms and projects apart."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests import processes
from tests.browser.conftest import Key, sign_in

pytestmark = pytest.mark.slow


def test_sign_in_with_the_bootstrap_key_shows_the_overview(
    page: Any,
    server: processes.Server,
    screenshot: Callable[[Any, str], object],
    assert_accessible: Callable[[Any], object],
) -> None:
    page.goto("/")
    page.wait_for_url(re.compile(r"/sign-in\?next=%2F$"))
    assert page.get_by_role("heading", name="Sign in").is_visible()
    screenshot(page, "sign-in")
    assert assert_accessible(page) == []  # not even a minor violation

    sign_in(page, server.key)

    assert page.url == f"{server.base_url}/"
    assert page.get_by_role("heading", name="Overview", exact=True).is_visible()
    nav = page.get_by_role("navigation", name="Main")
    for item in ("Overview", "Tasks", "Assets", "Webhooks", "Scores", "API docs"):
        assert nav.get_by_role("link", name=item).is_visible()
    assert nav.get_by_role("link", name="Overview").get_attribute("aria-current") == "page"
    assert page.get_by_role("button", name="Sign out").is_visible()
    assert page.get_by_text("Missing browser libraries").count() == 0


def test_a_wrong_key_is_told_so_and_not_signed_in(
    page: Any,
    server: processes.Server,
    screenshot: Callable[[Any, str], object],
    assert_accessible: Callable[[Any], object],
) -> None:
    page.goto("/sign-in")
    page.get_by_label("API key").fill("mt_not-a-key-of-this-service")
    with page.expect_response(re.compile(r"/sign-in$")) as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    alert = page.get_by_role("alert")
    assert "That API key is not valid" in alert.inner_text()
    assert page.get_by_label("API key").get_attribute("aria-invalid") == "true"
    assert not [c for c in page.context.cookies() if c["name"] == "mediatasks_session"]
    screenshot(page, "sign-in-wrong-key")
    assert assert_accessible(page) == []  # not even a minor violation
    page.goto("/")
    page.wait_for_url(re.compile(r"/sign-in"))


def test_the_session_cookie_is_httponly_strict_and_expiring(
    signed_in: Any, server: processes.Server
) -> None:
    cookies = [c for c in signed_in.context.cookies() if c["name"] == "mediatasks_session"]
    assert len(cookies) == 1
    cookie = cookies[0]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"
    assert cookie["expires"] > 0  # a persistent cookie with an expiry, not "until closed"
    assert cookie["secure"] is False  # plain http on loopback; Secure behind https
    assert server.key not in cookie["value"]
    assert signed_in.evaluate("document.cookie") == ""  # not readable by scripts


def test_the_cookie_is_secure_behind_https(tmp_path: Any) -> None:
    with processes.serve(tmp_path, public_url="https://127.0.0.1:9443") as running:
        page = httpx.get(f"{running.base_url}/sign-in")
        assert page.status_code == 200
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token
        form_cookie = page.headers["set-cookie"]
        assert "; secure" in form_cookie.lower()
        # A Secure cookie goes back only over https: send it by hand over loopback http.
        answer = httpx.post(
            f"{running.base_url}/sign-in",
            data={"csrf": token[1], "api_key": running.key, "next": "/"},
            headers={"Cookie": form_cookie.split(";")[0]},
        )
        assert answer.status_code == 303
        set_cookie = answer.headers["set-cookie"]
        assert set_cookie.startswith("mediatasks_session=")
        attributes = {part.strip().lower() for part in set_cookie.split(";")}
        assert {"httponly", "secure", "samesite=strict", "path=/"} <= attributes
        assert any(part.startswith("max-age=") for part in attributes)


def test_sign_out_ends_the_session(
    signed_in: Any, server: processes.Server, screenshot: Callable[[Any, str], object]
) -> None:
    kept = [c for c in signed_in.context.cookies() if c["name"] == "mediatasks_session"]
    signed_in.get_by_role("button", name="Sign out").click()
    signed_in.wait_for_url(re.compile(r"/sign-in\?reason=signed-out$"))
    assert "You are signed out" in signed_in.get_by_role("status").inner_text()
    screenshot(signed_in, "signed-out")
    assert not [c for c in signed_in.context.cookies() if c["name"] == "mediatasks_session"]
    signed_in.goto("/")
    signed_in.wait_for_url(re.compile(r"/sign-in\?next=%2F$"))
    # The overview is refused to a browser without the cookie, plainly as a redirect.
    refused = httpx.get(f"{server.base_url}/", follow_redirects=False)
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/sign-in")
    assert kept  # (the cookie existed before signing out)


def test_a_revoked_keys_session_ends_at_its_next_request(
    page: Any,
    new_key: Callable[..., Key],
    revoke_key: Callable[[str], None],
) -> None:
    key = new_key(new_project=False)
    sign_in(page, key.secret)
    assert page.get_by_role("heading", name="Overview", exact=True).is_visible()

    revoke_key(key.id)

    # The overview's next live refresh, without a reload, finds the session over.
    page.wait_for_url(re.compile(r"/sign-in\?next=%2F&reason=expired$"))
    assert "its API key was revoked" in page.get_by_role("status").inner_text()
    assert not [c for c in page.context.cookies() if c["name"] == "mediatasks_session"]
    page.get_by_label("API key").fill(key.secret)
    page.get_by_role("button", name="Sign in").click()
    assert "That API key is not valid" in page.get_by_role("alert").inner_text()


def test_a_post_without_the_csrf_token_is_refused(
    signed_in: Any,
    screenshot: Callable[[Any, str], object],
    assert_accessible: Callable[[Any], object],
) -> None:
    # A form as another site would send it: the browser's own cookie, no token.
    signed_in.evaluate(
        """() => {
            const form = document.createElement('form');
            form.method = 'post';
            form.action = '/sign-out';
            document.body.appendChild(form);
            form.submit();
        }"""
    )
    signed_in.wait_for_url(re.compile(r"/sign-out$"))
    assert signed_in.get_by_role("heading", name="Refused").is_visible()
    assert "not sent from this dashboard" in signed_in.locator("main").inner_text()
    screenshot(signed_in, "csrf-refused")
    assert assert_accessible(signed_in) == []  # not even a minor violation
    # Still signed in: the forged sign-out did nothing.
    signed_in.goto("/")
    assert signed_in.get_by_role("heading", name="Overview", exact=True).is_visible()

    status = signed_in.evaluate(
        """async () => (await fetch('/sign-out', {method: 'POST',
            headers: {'X-CSRF-Token': 'forged'}})).status"""
    )
    assert status == 403
    status = signed_in.evaluate(
        """async () => (await fetch('/sign-out', {method: 'POST',
            headers: {'Content-Type': 'application/x-www-form-urlencoded'},
            body: 'csrf=forged'})).status"""
    )
    assert status == 403


def test_a_forged_sign_in_is_refused(server: processes.Server) -> None:
    answer = httpx.post(
        f"{server.base_url}/sign-in",
        data={"api_key": server.key, "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    assert "mediatasks_session" not in answer.headers.get("set-cookie", "")
    assert "not sent from this dashboard" in answer.text


def test_sign_in_goes_back_only_to_a_page_of_this_service(
    page: Any, server: processes.Server
) -> None:
    page.goto("/sign-in?next=//elsewhere.invalid/steal")
    page.get_by_label("API key").fill(server.key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.base_url}/")
