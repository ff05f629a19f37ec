"""The pages' Content-Security-Policy in a real browser: the main pages work under it without a
single violation, and what it forbids (an inline script) is refused and seen."""

from __future__ import annotations

from typing import Any

from tests import processes
from tests.browser.conftest import VIEWPORT, sign_in, watch_csp

MAIN_PAGES = ("/", "/tasks", "/assets", "/assets/new", "/webhooks", "/webhooks/new", "/scores")


def test_the_main_pages_and_the_docs_run_under_their_policy(signed_in: Any) -> None:
    # The ``page`` fixture fails the test on any violation these pages report.
    for path in (*MAIN_PAGES, "/docs"):
        answer = signed_in.goto(path)
        assert answer is not None and answer.ok, path
        policy = answer.headers.get("content-security-policy", "")
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
        signed_in.wait_for_load_state("networkidle")
    # Swagger UI draws an operation, its examples and its form when it is opened.
    signed_in.locator(".opblock-summary").first.click()
    signed_in.get_by_role("button", name="Try it out").first.click()
    signed_in.locator(".opblock-body .highlight-code").first.wait_for()


def test_an_inline_script_is_refused_and_reported(browser: Any, server: processes.Server) -> None:
    context = browser.new_context(viewport=VIEWPORT, base_url=server.base_url)
    try:
        violations = watch_csp(context)
        page = context.new_page()
        sign_in(page, server.key)
        page.evaluate(
            """() => {
                const script = document.createElement("script");
                script.textContent = "window.inlineRan = true";
                document.body.append(script);
            }"""
        )
        page.wait_for_timeout(200)
        assert page.evaluate("window.inlineRan") is None
        assert any("script-src" in seen for seen in violations), violations
    finally:
        context.close()
