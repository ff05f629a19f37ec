"""The dashboard in a real browser: a real ``mediatasks serve`` and Debian's chromium, driven by
Playwright (from PyPI; never ``playwright install``).

Fixtures:

* ``server``: one ``mediatasks serve`` (embedded: SQLite, a worker) for the whole session, on a
  free loopback port; ``server.key`` is its bootstrap API key.
* ``browser``: chromium, headless, for one test module.  ``page``: a fresh context (no
  cookies) at 1280x800, which fails the test on any Content-Security-Policy violation;
  ``watched_context(browser, ...)`` is such a context for a test's own use, and
  ``watch_csp(context)`` only collects a context's violations.  So a
  ``wait_for_function`` predicate is a function (``"() => ..."``): Playwright polls a bare
  expression with ``eval``, which the pages' policy refuses.
* ``signed_in``: a ``page`` signed in with the bootstrap key, on the overview.
* ``screenshot(page, name)``: a 1280x800 PNG in ``test-artifacts/screenshots/<name>.png``.
* ``assert_accessible(page)``: axe-core (pinned by ``tests/browser/package-lock.json``) on the
  page as it is; fails on any critical violation.
* ``new_key(new_project=True)``: a new API key made by ``mediatasks keys create``, as
  :class:`Key` (its id, project and secret); ``revoke_key(key_id)`` revokes one.

Without chromium, or without axe-core installed, the tests skip saying why, except in CI
(``CI=true``), where they fail.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import processes

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORT = {"width": 1280, "height": 800}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        _unavailable("chromium is not installed: run ./scripts/setup as root (apt-get)")
    assert found is not None
    return found


@dataclasses.dataclass(frozen=True)
class Key:
    """An API key made for a test."""

    id: str
    project_id: str
    secret: str


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[processes.Server]:
    """A real embedded ``mediatasks serve`` for the session."""
    with processes.serve(tmp_path_factory.mktemp("dashboard")) as running:
        yield running


def _cli(server: processes.Server, *args: str) -> str:
    env = {**os.environ, **server.env}
    done = subprocess.run(
        [sys.executable, "-m", "mediatasks", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def new_key(server: processes.Server) -> Callable[..., Key]:
    """``new_key(new_project=True)``: a key from ``mediatasks keys create`` on the server's
    store, in a new project or in the first one."""

    def make(new_project: bool = True, name: str = "browser") -> Key:
        args = ["keys", "create", "--name", name]
        if new_project:
            args.append("--new-project")
        out = _cli(server, *args)
        match = re.search(r"key (\S+) for project (\S+)\s+(\S+)", out)
        assert match, out
        return Key(id=match[1], project_id=match[2], secret=match[3])

    return make


@pytest.fixture
def revoke_key(server: processes.Server) -> Callable[[str], None]:
    """``revoke_key(key_id)`` through ``mediatasks keys revoke``."""

    def revoke(key_id: str) -> None:
        _cli(server, "keys", "revoke", key_id)

    return revoke


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, driven by Playwright.  One per test module: Playwright's
    synchronous API keeps an event loop running while it is open, which the asynchronous tests
    of other modules cannot share."""
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


#: Run in every document before its own scripts: each Content-Security-Policy violation that the
#: document sees becomes a console error (the browser's own message does not name the directive
#: for every kind of violation).
_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} refused ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile}:${event.lineNumber}`);
});
"""


def watch_csp(context: Any) -> list[str]:
    """Collect every Content-Security-Policy violation reported in ``context``'s pages (by the
    ``securitypolicyviolation`` event, or by the browser's own console message): the list
    that fills as they come."""
    seen: list[str] = []

    def console(message: Any) -> None:
        text = message.text
        if text.startswith("CSP violation:") or "Content Security Policy" in text:
            seen.append(f"{text} ({message.page.url if message.page else '?'})")

    context.add_init_script(_REPORT_CSP_VIOLATIONS)
    context.on("console", console)
    return seen


@contextlib.contextmanager
def watched_context(browser: Any, **options: Any) -> Iterator[Any]:
    """A new browser context (``browser.new_context(**options)``), closed at the end; the test
    fails if any of its pages reported a Content-Security-Policy violation."""
    context = browser.new_context(**options)
    violations = watch_csp(context)
    try:
        yield context
    finally:
        context.close()
    assert violations == [], "Content-Security-Policy violations"


@pytest.fixture
def page(browser: Any, server: processes.Server) -> Iterator[Any]:
    """A new page in a fresh context (no cookies), 1280x800, on the server's origin, watched
    for Content-Security-Policy violations (``watched_context``)."""
    with watched_context(browser, viewport=VIEWPORT, base_url=server.base_url) as context:
        context.set_default_timeout(15_000)
        yield context.new_page()


def sign_in(page: Any, secret: str) -> None:
    """Sign ``page`` in with the API key ``secret`` through the sign-in form."""
    page.goto("/sign-in")
    page.get_by_label("API key").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^(?!.*/sign-in).*$"))


@pytest.fixture
def signed_in(page: Any, server: processes.Server) -> Any:
    """A page signed in with the server's bootstrap key, on the overview."""
    sign_in(page, server.key)
    return page


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    """``screenshot(page, name)``: save the page at 1280x800 (the viewport, not the whole page)
    to ``test-artifacts/screenshots/<name>.png``; its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        if page.viewport_size != VIEWPORT:
            page.set_viewport_size(VIEWPORT)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return take


@pytest.fixture(scope="session")
def _axe_source() -> str:
    if not AXE.is_file():
        _unavailable("axe-core is not installed: npm ci --prefix tests/browser")
    return AXE.read_text()


@pytest.fixture
def assert_accessible(_axe_source: str) -> Callable[[Any], list[dict[str, Any]]]:
    """``assert_accessible(page)``: run axe-core on the page; fail on a critical violation.
    Returns every violation found (for a test that wants to look at the others)."""

    def check(page: Any) -> list[dict[str, Any]]:
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            # Evaluated rather than added as a <script>: the pages' policy refuses inline ones.
            page.evaluate(_axe_source)
        result: dict[str, Any] = page.evaluate(
            "async () => await window.axe.run(document, {resultTypes: ['violations']})"
        )
        violations: list[dict[str, Any]] = result["violations"]
        critical = [v for v in violations if v.get("impact") == "critical"]
        described = [
            f"{v['id']}: {v['help']} at {[node['target'] for node in v['nodes']]}" for v in critical
        ]
        assert not critical, f"critical accessibility violations on {page.url}: {described}"
        return violations

    return check
