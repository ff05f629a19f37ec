"""The API documentation in a real browser that can reach no host but the service: ``/docs``
shows every operation of both dialects, and each dialect's own page every one of its own."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import processes

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _operations(server: processes.Server, document: str, prefix: str = "") -> set[tuple[str, str]]:
    with urllib.request.urlopen(server.base_url + document, timeout=10) as answer:
        spec = json.load(answer)
    return {
        (method.upper(), prefix + path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }


def _offline(page: Any) -> list[str]:
    """Make every host but the loopback unreachable for ``page``; the list of URLs refused."""
    refused: list[str] = []

    def route(handled: Any) -> None:
        host = urllib.parse.urlsplit(handled.request.url).hostname or ""
        if handled.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            handled.continue_()
        else:
            refused.append(handled.request.url)
            handled.abort("addressunreachable")

    page.route("**/*", route)
    return refused


def _shown_operations(page: Any, count: int) -> set[tuple[str, str]]:
    """The ``(METHOD, path)`` of every operation Swagger UI shows, once it shows ``count``."""
    page.wait_for_function(
        f"() => document.querySelectorAll('.opblock').length >= {count}", timeout=30_000
    )
    shown: list[list[str]] = page.eval_on_selector_all(
        ".opblock",
        """blocks => blocks.map(block => [
            block.querySelector('.opblock-summary-method').textContent.trim(),
            block.querySelector('.opblock-summary-path').getAttribute('data-path'),
        ])""",
    )
    return {(method, path) for method, path in shown}


def test_docs_show_every_operation_of_both_dialects_offline(
    page: Any,
    server: processes.Server,
    screenshot: Callable[[Any, str], Path],
    assert_accessible: Callable[[Any], list[dict[str, Any]]],
) -> None:
    livepeer = _operations(server, "/api/openapi.json", "/api")
    flat = _operations(server, "/v2/openapi.json", "/v2")
    assert ("POST", "/api/asset/upload/url") in livepeer
    assert ("POST", "/v2/scores") in flat
    combined = _operations(server, "/openapi.json")
    assert livepeer | flat <= combined
    refused = _offline(page)
    page.goto("/docs")
    shown = _shown_operations(page, len(combined))
    assert shown == combined
    assert page.get_by_role("heading", name="Livepeer Studio (/api)").is_visible()
    assert page.get_by_role("heading", name="Flat (/v2)").is_visible()
    assert page.locator(".errors-wrapper").count() == 0  # the document resolved, no error box
    screenshot(page, "api-docs")
    assert_accessible(page)  # Swagger UI's own markup has minor findings (contrast, landmarks)
    assert refused == []


@pytest.mark.parametrize("prefix", ["/api", "/v2"])
def test_each_dialect_has_its_own_page_offline(
    page: Any, server: processes.Server, prefix: str
) -> None:
    own = _operations(server, f"{prefix}/openapi.json")
    refused = _offline(page)
    page.goto(f"{prefix}/docs")
    assert _shown_operations(page, len(own)) == own
    assert refused == []
