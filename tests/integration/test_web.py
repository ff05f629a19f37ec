"""The dashboard's plumbing over HTTP: sessions, forged forms, static files and missing browser
libraries (the pages themselves are tested in a real browser, under ``tests/browser``)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import httpx
import pytest

from mediatasks import settings, taskstore
from mediatasks.web import files, render, session
from tests import inprocess


def _token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found[1]


async def _sign_in(client: httpx.AsyncClient, secret: str, base: str = "") -> httpx.Response:
    form = await client.get(f"{base}/sign-in")
    assert form.status_code == 200
    return await client.post(
        f"{base}/sign-in", data={"csrf": _token(form), "api_key": secret, "next": "/"}
    )


async def test_sign_in_over_https_sets_a_secure_session_that_a_revoked_key_ends(
    store: taskstore.TaskStore, tmp_path: Path
) -> None:
    config = settings.Settings(data_dir=tmp_path / "data")
    async with inprocess.running(store, config, worker=False) as service:
        web, https = service.viewer, "https://testserver"
        signed = await _sign_in(web, service.secret, https)
        assert signed.status_code == 303 and signed.headers["location"] == "/"
        cookie = signed.headers["set-cookie"].lower()
        assert cookie.startswith(session.COOKIE)
        assert {"httponly", "secure", "samesite=strict", "path=/"} <= {
            part.strip() for part in cookie.split(";")
        }
        assert f"max-age={session.LIFETIME_S}" in cookie
        overview = await web.get(f"{https}/")
        assert overview.status_code == 200
        assert overview.headers["cache-control"] == "no-store"
        assert overview.headers["x-frame-options"] == "DENY"
        assert (await web.get("http://testserver/")).status_code == 303  # not sent over http

        [key] = await store.list_api_keys(service.project_id)
        await store.revoke_api_key(key.id)
        refused = await web.get(f"{https}/")
        assert refused.status_code == 303
        assert refused.headers["location"] == "/sign-in?next=%2F&reason=expired"
        assert session.COOKIE in refused.headers["set-cookie"]  # the cookie is cleared
        assert (await web.get(f"{https}/overview/live")).status_code == 303


async def test_a_tampered_or_expired_cookie_is_no_session(
    store: taskstore.TaskStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = settings.Settings(data_dir=tmp_path / "data")
    async with inprocess.running(store, config, worker=False) as service:
        web = service.viewer
        assert (await _sign_in(web, service.secret)).status_code == 303
        good = web.cookies[session.COOKIE]
        assert (await web.get("/")).status_code == 200
        web.cookies.set(session.COOKIE, good[:-2] + ("AA" if not good.endswith("AA") else "BB"))
        assert (await web.get("/")).status_code == 303
        web.cookies.set(session.COOKIE, good)
        monkeypatch.setattr(session, "LIFETIME_S", -1)
        answer = await web.get("/")
        assert answer.status_code == 303 and "reason=expired" in answer.headers["location"]


async def test_forged_posts_are_refused_and_htmx_is_sent_to_sign_in(
    store: taskstore.TaskStore, tmp_path: Path
) -> None:
    config = settings.Settings(data_dir=tmp_path / "data")
    async with inprocess.running(store, config, worker=False) as service:
        web = service.viewer
        no_form = await web.post("/sign-in", data={"api_key": service.secret})
        assert no_form.status_code == 403 and session.COOKIE not in no_form.headers.get(
            "set-cookie", ""
        )
        form = await web.get("/sign-in")
        wrong = await web.post(
            "/sign-in", data={"csrf": _token(form), "api_key": "mt_wrong", "next": "/"}
        )
        assert wrong.status_code == 401 and "That API key is not valid" in wrong.text
        assert "mt_wrong" not in wrong.text

        assert (await _sign_in(web, service.secret)).status_code == 303
        assert (await web.post("/sign-out")).status_code == 403
        assert (await web.post("/sign-out", headers={"X-CSRF-Token": "x"})).status_code == 403
        assert (await web.get("/")).status_code == 200  # still signed in

        web.cookies.clear()
        htmx = await web.get("/overview/live", headers={"HX-Request": "true"})
        assert htmx.status_code == 401 and "location" not in htmx.headers
        assert htmx.headers["hx-redirect"] == "/sign-in?next=%2Foverview%2Flive"
        from_page = await web.get(
            "/overview/live",
            headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/?a=1"},
        )
        assert from_page.headers["hx-redirect"] == "/sign-in?next=%2F%3Fa%3D1"


async def test_static_files_stay_inside_their_folders(
    store: taskstore.TaskStore, tmp_path: Path
) -> None:
    config = settings.Settings(data_dir=tmp_path / "data")
    async with inprocess.running(store, config, worker=False) as service:
        web = service.viewer
        css = await web.get("/static/dashboard.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        if not files.missing_message():
            htmx = await web.get("/static/vendor/htmx.org/htmx.min.js")
            assert htmx.status_code == 200 and b"htmx" in htmx.content
        for path in (
            "/static/vendor/htmx.org/../package.json",
            "/static/vendor/htmx.org/%2e%2e/package.json",
            "/static/vendor/htmx.org/..%2f..%2fpackage.json",
            "/static/vendor/left-pad/index.js",
            "/static/%2e%2e/session.py",
            "/static/..%2fsession.py",
            "/static/",
        ):
            assert (await web.get(path)).status_code == 404, path


async def test_without_the_browser_libraries_every_page_says_how_to_install_them(
    store: taskstore.TaskStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "NODE_MODULES", tmp_path / "no-node-modules")
    config = settings.Settings(data_dir=tmp_path / "data")
    async with inprocess.running(store, config, worker=False) as service:
        web = service.viewer
        page = await web.get("/sign-in")
        assert page.status_code == 200
        assert page.text.count(files.MISSING) == 1
        assert "/static/vendor/" not in page.text  # no script that cannot load
        assert (await _sign_in(web, service.secret)).status_code == 303
        overview = await web.get("/")
        assert overview.status_code == 200 and files.MISSING in overview.text
        assert (await web.get("/static/vendor/htmx.org/htmx.min.js")).status_code == 404


async def test_an_unknown_page_answers_a_browser_in_words(
    store: taskstore.TaskStore, tmp_path: Path
) -> None:
    config = settings.Settings(data_dir=tmp_path / "data")
    async with inprocess.running(store, config, worker=False) as service:
        web = service.viewer
        page = await web.get("/no-such-page", headers={"Accept": "text/html"})
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "<h1>Not found</h1>" in page.text
        plain = await web.get("/no-such-page")
        assert plain.status_code == 404 and plain.json() == {"detail": "Not Found"}
        api = await web.get("/api/no-such-thing", headers={"Accept": "text/html"})
        assert api.status_code == 404 and "errors" in api.json()


async def test_every_page_has_a_content_security_policy_and_the_docs_their_own(
    store: taskstore.TaskStore, tmp_path: Path
) -> None:
    config = settings.Settings(data_dir=tmp_path / "data")
    async with inprocess.running(store, config, worker=False) as service:
        web = service.viewer
        pages = [await web.get("/sign-in"), await web.get("/x", headers={"Accept": "text/html"})]
        assert (await _sign_in(web, service.secret)).status_code == 303
        for path in ("/", "/tasks", "/assets", "/assets/new", "/webhooks", "/scores"):
            pages.append(await web.get(path))
        for page in pages:
            where = page.request.url.path
            assert page.headers["content-type"].startswith("text/html"), where
            assert page.headers["content-security-policy"] == render.CONTENT_SECURITY_POLICY
            assert page.headers["x-content-type-options"] == "nosniff", where
            assert page.headers["referrer-policy"] == "same-origin", where
        directives = dict(
            part.strip().split(" ", 1) for part in render.CONTENT_SECURITY_POLICY.split(";")
        )
        assert directives["script-src"] == directives["style-src"] == "'self'"
        assert directives["frame-ancestors"] == directives["object-src"] == "'none'"

        for path in ("/docs", "/api/docs", "/v2/docs"):
            docs = await web.get(path)
            assert docs.status_code == 200, path
            policy = dict(
                part.strip().split(" ", 1)
                for part in docs.headers["content-security-policy"].split(";")
            )
            [inline] = re.findall(r"<script>(.*?)</script>", docs.text, re.DOTALL)
            digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
            assert policy["script-src"] == f"'self' 'sha256-{digest}'", path
            assert policy["frame-ancestors"] == "'none'" and policy["style-src"] == "'self'"
            assert docs.headers["x-content-type-options"] == "nosniff"


async def test_a_begun_upload_gives_its_panel_again_while_its_bytes_are_awaited(
    store: taskstore.TaskStore, tmp_path: Path
) -> None:
    """What the new-asset page asks for an upload that an earlier page began."""
    config = settings.Settings(data_dir=tmp_path / "data")
    async with inprocess.running(store, config, worker=False) as service:
        web = service.viewer
        assert (await _sign_in(web, service.secret)).status_code == 303
        csrf = _token(await web.get("/assets/new"))
        made = await web.post("/assets/new/upload", data={"csrf": csrf, "name": "begun"})
        found = re.search(r'data-asset-id="([^"]+)"', made.text)
        assert made.status_code == 200 and found, made.text
        asset_id = found[1]
        endpoint = re.search(r'data-tus-endpoint="([^"]+)"', made.text)
        assert endpoint

        again = await web.post(f"/assets/{asset_id}/upload", data={"csrf": csrf})
        assert again.status_code == 200
        assert f'data-asset-id="{asset_id}"' in again.text
        assert f'data-tus-endpoint="{endpoint[1]}"' in again.text  # the same signed URL
        assert (await web.post(f"/assets/{asset_id}/upload")).status_code == 403  # no csrf
        missing = await web.post("/assets/no-such-asset/upload", data={"csrf": csrf})
        assert missing.status_code == 404

        task = await store.task_of_asset(asset_id)
        assert task is not None
        await store.schedule(task.id)  # every byte arrived
        over = await web.post(f"/assets/{asset_id}/upload", data={"csrf": csrf})
        assert over.status_code == 409 and "no longer waiting" in over.text
