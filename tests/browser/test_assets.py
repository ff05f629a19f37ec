"""The Assets pages in a real browser against a real ``mediatasks serve``: an upload from the page
through tus with its progress, the task followed live, playback through hls.js, an upload that
resumes after a dropped connection, an import by URL, a jwt asset, deletion, and another
project's asset."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from mediatasks.api.livepeer import uploads
from tests import mediagen, processes, tcpproxy
from tests.browser.conftest import SCREENSHOTS, VIEWPORT, Key, sign_in, watched_context

pytestmark = pytest.mark.slow

#: Long enough for a 5 s clip to be transcoded on a busy 2-core machine.
READY_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 5 s video with sound."""
    folder = tmp_path_factory.mktemp("assets-media")
    return mediagen.make_video(folder / "five-seconds.mp4", seconds=5, width=640, height=360)


@pytest.fixture(scope="module")
def media_server(video: Path) -> Iterator[str]:
    """A loopback file server holding the generated video."""
    with processes.file_server(video.parent) as base:
        yield base


def _api(server: processes.Server, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.base_url}/api", headers={"Authorization": f"Bearer {key}"}
    )


def _wait_ready(server: processes.Server, key: str, asset_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT_MS / 1000
    with _api(server, key) as api:
        while time.monotonic() < deadline:
            asset: dict[str, Any] = api.get(f"/asset/{asset_id}").json()
            phase = asset["status"]["phase"]
            assert phase != "failed", asset
            if phase == "ready":
                return asset
            time.sleep(0.2)
    raise AssertionError(f"asset {asset_id} not ready in time")


def _fits_a_phone(page: Any, name: str) -> None:
    """At a phone's width the page needs no sideways scrolling; saves ``<name>-phone.png``."""
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"))
        overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
        wide = page.evaluate(
            """() => [...document.querySelectorAll('main *')]
              .filter(e => e.getBoundingClientRect().right > innerWidth)
              .filter(e => !e.closest('.table-wrap'))  // those scroll inside their frame
              .map(e => `${e.tagName}#${e.id}.${e.className}`)
              .slice(0, 8)"""
        )
        assert overflow <= 0, f"{page.url} is {overflow}px wider than a phone: {wide}"
    finally:
        page.set_viewport_size(VIEWPORT)


def _record_status(page: Any, selector: str) -> None:
    """Keep, in the page, each status that the element at ``selector`` shows (asset phase and
    task phase), in order, from now on."""
    page.evaluate(
        """(selector) => {
          window.notReloaded = true;
          window.seenStatus = [];
          const look = () => {
            const status = document.querySelector(selector + ' [data-asset-phase]');
            const task = document.querySelector(selector + ' [data-task-phase]');
            if (!status) return;
            const now = status.dataset.assetPhase + ' ' + (task ? task.dataset.taskPhase : '');
            if (window.seenStatus.at(-1) !== now) window.seenStatus.push(now);
          };
          look();
          new MutationObserver(look).observe(document.body,
            {subtree: true, childList: true, attributes: true});
        }""",
        selector,
    )


def _record_phases(page: Any) -> None:
    """Keep, in the page, every task phase and upload percentage the page shows, in order
    (a page reload would lose them)."""
    page.evaluate(
        """() => {
          window.seenPhases = [];
          window.seenPercents = [];
          const look = () => {
            const badge = document.querySelector('#upload-area [data-task-phase]');
            if (badge && window.seenPhases.at(-1) !== badge.dataset.taskPhase) {
              window.seenPhases.push(badge.dataset.taskPhase);
            }
            const panel = document.querySelector('#upload-area [data-upload-percent]');
            if (panel && window.seenPercents.at(-1) !== panel.dataset.uploadPercent) {
              window.seenPercents.push(panel.dataset.uploadPercent);
            }
          };
          new MutationObserver(look).observe(document.body,
            {subtree: true, childList: true, attributes: true});
        }"""
    )


def _upload_from_page(page: Any, video: Path, name: str) -> str:
    """Choose ``video`` on /assets/new and start its upload; the new asset's id."""
    page.get_by_label("Video file").set_input_files(str(video))
    page.get_by_label("Name").first.fill(name)
    page.get_by_role("button", name="Upload").click()
    panel = page.locator("#upload-area [data-asset-id]")
    panel.wait_for()
    asset_id: str = panel.get_attribute("data-asset-id")
    return asset_id


def _wait_playing(page: Any) -> None:
    """Start the page's player (muted, as a browser allows without a gesture) and wait until
    it has played past 1 s, failing on any media error."""
    page.wait_for_function(
        "() => { const v = document.getElementById('player');"
        " return v && !v.hidden && v.readyState >= 1 || (v && v.dataset.playerError); }",
        timeout=30_000,
    )
    page.evaluate(
        "() => { const v = document.getElementById('player'); v.muted = true; v.play(); }"
    )
    page.wait_for_function(
        "() => { const v = document.getElementById('player');"
        " return v.currentTime > 1 || v.error || v.dataset.playerError; }",
        timeout=30_000,
    )
    state = page.evaluate(
        "() => { const v = document.getElementById('player'); return {time: v.currentTime,"
        " error: v.error && v.error.code, message: v.dataset.playerError || null}; }"
    )
    assert state["error"] is None and state["message"] is None, state
    assert state["time"] > 1


def test_upload_from_the_page_shows_progress_until_ready_and_plays(
    signed_in: Any,
    server: processes.Server,
    video: Path,
    screenshot: Callable[[Any, str], Path],
    assert_accessible: Callable[[Any], Any],
) -> None:
    page = signed_in
    page.goto("/assets/new")
    screenshot(page, "assets-new")
    assert assert_accessible(page) == []  # not even a minor violation
    _fits_a_phone(page, "assets-new")
    _record_phases(page)
    page.evaluate("() => { window.notReloaded = true; }")

    asset_id = _upload_from_page(page, video, "uploaded from the page")

    page.wait_for_function(
        "() => (window.seenPhases || []).includes('completed')", timeout=READY_TIMEOUT_MS
    )
    assert page.evaluate("() => window.notReloaded === true"), "the page was reloaded"
    percents = [int(p) for p in page.evaluate("() => window.seenPercents")]
    assert percents[-1] == 100 and percents == sorted(percents), percents
    bar = page.locator(f"#upload-progress-{asset_id}")
    assert bar.get_attribute("value") == bar.get_attribute("max") == str(video.stat().st_size)
    assert "(100 %)" in page.locator("[data-upload-figures]").inner_text()
    phases = page.evaluate("() => window.seenPhases")
    assert "running" in phases, phases
    assert phases.index("running") < phases.index("completed"), phases
    status = page.locator(f"#asset-status-{asset_id} [data-asset-phase]")
    assert status.get_attribute("data-asset-phase") == "ready"
    screenshot(page, "assets-new-uploaded")

    page.get_by_role("link", name="uploaded from the page").first.click()
    page.wait_for_url(f"**/assets/{asset_id}")
    _wait_playing(page)
    # The MP4 renditions of the ladder, each with a working download link.
    links = page.get_by_role("link", name=re.compile(r"^Download MP4"))
    assert links.count() >= 1
    for href in links.evaluate_all("links => links.map(l => l.href)"):
        head = httpx.head(href)
        assert head.status_code == 200 and head.headers["content-type"] == "video/mp4"
    source = page.get_by_role("link", name=re.compile(r"^Download the source"))
    assert httpx.get(server.base_url + source.get_attribute("href")).content == (video.read_bytes())
    made_by = page.locator("a[href^='/tasks/']")
    assert made_by.count() >= 1
    page.evaluate("() => document.getElementById('player').pause()")
    page.screenshot(path=str(SCREENSHOTS / "asset-whole-page.png"), full_page=True)
    screenshot(page, "asset")
    assert assert_accessible(page) == []  # not even a minor violation
    _fits_a_phone(page, "asset")

    page.goto("/assets")
    row = page.locator(f"tr[data-asset-id='{asset_id}']")
    assert "uploaded from the page" in row.inner_text()
    assert row.locator("[data-asset-phase]").get_attribute("data-asset-phase") == "ready"
    assert "0:05" in row.inner_text()
    screenshot(page, "assets")
    assert assert_accessible(page) == []  # not even a minor violation
    _fits_a_phone(page, "assets")


def test_upload_resumes_by_itself_after_a_dropped_connection(
    signed_in: Any, server: processes.Server, video: Path
) -> None:
    page = signed_in
    page.goto("/assets/new")
    chunk = 64 * 1024
    assert video.stat().st_size > 3 * chunk
    # Small pieces, so that this small file takes several PATCH requests.
    page.evaluate(
        f"() => {{ document.getElementById('upload-form').dataset.chunkBytes = {chunk}; }}"
    )
    seen: list[tuple[str, str | None]] = []

    def tus(route: Any) -> None:
        request = route.request
        seen.append((request.method, request.headers.get("upload-offset")))
        patches = [offset for method, offset in seen if method == "PATCH"]
        if request.method == "PATCH" and len(patches) == 2:
            route.abort("connectionreset")  # the second piece never arrives
            return
        route.continue_()

    page.route(re.compile(r"/api/asset/upload/tus/"), tus)
    asset_id = _upload_from_page(page, video, "resumed upload")
    page.wait_for_function(
        "() => document.querySelector('[data-upload-state]')?.dataset.uploadState === 'done'"
        " || document.querySelector('[data-upload-state]')?.dataset.uploadState === 'failed'",
        timeout=60_000,
    )
    panel = page.locator("#upload-area [data-asset-id]")
    assert panel.get_attribute("data-upload-state") == "done"
    assert panel.get_attribute("data-retries") == "1"
    patches = [(i, offset) for i, (method, offset) in enumerate(seen) if method == "PATCH"]
    cut_at, cut_offset = patches[1]
    assert cut_offset == str(chunk)
    # After the cut: a HEAD asks the server where it stands, then the piece is sent again.
    assert seen[cut_at + 1] == ("HEAD", None), seen
    assert patches[2][1] == cut_offset, seen
    asset = _wait_ready(server, server.key, asset_id)
    assert asset["size"] == video.stat().st_size
    assert httpx.get(asset["downloadUrl"]).content == video.read_bytes()


def test_upload_resumes_after_its_connection_is_cut_in_the_middle(
    browser: Any, server: processes.Server, tmp_path: Path
) -> None:
    """The browser reaches the service through a TCP proxy that cuts every connection while
    the file is on its way: the upload goes on from the bytes the service kept."""
    big = mediagen.make_video(
        tmp_path / "big.mp4", seconds=5, width=1280, height=720, extra_args=["-crf", "0"]
    )
    size = big.stat().st_size
    assert size > 4_000_000
    port = int(server.base_url.rsplit(":", 1)[1])
    with tcpproxy.proxy("127.0.0.1", port) as proxy:
        with watched_context(
            browser, viewport=VIEWPORT, base_url=f"http://{proxy.url_host}"
        ) as context:
            page = context.new_page()
            sign_in(page, server.key)
            page.goto("/assets/new")
            sent = _tus_requests(page, "/api/asset/upload/tus/")
            # Cut every connection once a third of the file has gone through.
            cut = proxy.cut_when_up(proxy.bytes_up + size // 3)
            asset_id = _upload_from_page(page, big, "cut in the middle")
            _wait_upload_over(page, timeout_ms=120_000)
            assert cut.wait(5), "the connections were never cut"
            panel = page.locator("#upload-area [data-asset-id]")
            assert panel.get_attribute("data-upload-state") == "done"
            assert int(panel.get_attribute("data-retries") or 0) >= 1
    # After the cut a PATCH went on from the bytes the service kept: neither the start of the
    # file nor the start of one of the page's pieces (8 MB each).
    offsets = [int(offset) for method, offset in sent if method == "PATCH" and offset]
    resumed = [offset for offset in offsets if offset % 8_000_000 != 0]
    assert resumed and all(0 < offset < size for offset in resumed), sent
    asset = _wait_ready(server, server.key, asset_id)
    assert asset["size"] == size
    assert httpx.get(asset["downloadUrl"]).content == big.read_bytes()


def _tus_requests(page: Any, path: str) -> list[tuple[str, str | None]]:
    """The page's tus requests from now on (to URLs holding ``path``), each as its method and
    ``Upload-Offset``."""
    sent: list[tuple[str, str | None]] = []
    page.on(
        "request",
        lambda request: (
            path in request.url
            and sent.append((request.method, request.headers.get("upload-offset")))
        ),
    )
    return sent


def _wait_upload_over(page: Any, *, timeout_ms: int) -> None:
    """Wait until the page's upload panel says its upload is done or failed."""
    page.wait_for_function(
        "() => ['done', 'failed'].includes("
        "document.querySelector('[data-upload-state]')?.dataset.uploadState)",
        timeout=timeout_ms,
    )


def _begin_and_stop(page: Any, video: Path, name: str, chunk: int) -> tuple[str, int]:
    """On /assets/new, begin the upload of ``video`` in pieces of ``chunk`` bytes and let two
    arrive; every later PATCH is refused until the page is gone (the route stays on the page,
    inert after a reload).  The asset's id and the bytes the service holds."""
    page.goto("/assets/new")
    page.evaluate(
        f"() => {{ document.getElementById('upload-form').dataset.chunkBytes = {chunk}; }}"
    )
    state = {"patches": 0, "blocking": True}

    def tus(route: Any) -> None:
        if route.request.method == "PATCH" and state["blocking"]:
            state["patches"] += 1
            if state["patches"] > 2:
                route.abort("connectionreset")
                return
        route.continue_()

    page.route(re.compile(r"/api/asset/upload/tus/"), tus)
    asset_id = _upload_from_page(page, video, name)
    page.wait_for_function(
        "() => Number(document.querySelector('[data-retries]')?.dataset.retries) >= 1",
        timeout=30_000,
    )
    assert page.locator("[data-upload-state]").get_attribute("data-upload-state") == "sending"
    page.reload()
    state["blocking"] = False
    return asset_id, 2 * chunk


def _record_messages(page: Any) -> None:
    """Keep, in the page, every text the upload message shows, in order."""
    page.evaluate(
        """() => {
          window.seenMessages = [];
          const message = document.getElementById('upload-message');
          new MutationObserver(() => window.seenMessages.push(message.textContent))
            .observe(message, {subtree: true, childList: true, characterData: true});
        }"""
    )


def _tus_entries(page: Any) -> list[str]:
    """What tus-js-client keeps in the page's localStorage."""
    keys: list[str] = page.evaluate(
        "() => Object.keys(localStorage).filter(key => key.startsWith('tus::'))"
    )
    return keys


def test_an_upload_goes_on_after_the_page_is_reloaded(
    browser: Any, server: processes.Server, video: Path, new_key: Callable[..., Key]
) -> None:
    """A user who reloads the page in the middle of an upload and chooses the same file again
    goes on with the same asset from the bytes the service kept."""
    key = new_key(new_project=True)
    chunk = 64 * 1024
    size = video.stat().st_size
    assert size > 4 * chunk
    with watched_context(browser, viewport=VIEWPORT, base_url=server.base_url) as context:
        page = context.new_page()
        sign_in(page, key.secret)
        asset_id, _ = _begin_and_stop(page, video, "reloaded upload", chunk)
        assert len(_tus_entries(page)) == 1
        page.evaluate(
            f"() => {{ document.getElementById('upload-form').dataset.chunkBytes = {chunk}; }}"
        )
        _record_messages(page)
        sent = _tus_requests(page, "/api/asset/upload/tus")
        again = _upload_from_page(page, video, "chosen again")
        _wait_upload_over(page, timeout_ms=60_000)
        panel = page.locator("#upload-area [data-asset-id]")
        assert panel.get_attribute("data-upload-state") == "done"
        assert again == asset_id
        # No creation: a HEAD asks where the service stands, and the first PATCH goes on there.
        assert sent[0] == ("HEAD", None), sent
        first_patch = next(offset for method, offset in sent if method == "PATCH")
        assert first_patch is not None and 0 < int(first_patch) < size, sent
        assert panel.get_attribute("data-resumed-at") == first_patch
        percent = int(first_patch) * 100 // size
        messages = page.evaluate("() => window.seenMessages")
        assert f"Resuming {video.name} at {percent} %" in " | ".join(messages), messages
        assert _tus_entries(page) == []  # forgotten once the upload is over
    with _api(server, key.secret) as api:
        listed = api.get("/asset").json()
    assert [asset["id"] for asset in listed] == [asset_id]
    asset = _wait_ready(server, key.secret, asset_id)
    assert asset["size"] == size
    assert httpx.get(asset["downloadUrl"]).content == video.read_bytes()


def test_a_reloaded_page_starts_anew_when_the_begun_uploads_asset_is_gone(
    browser: Any, server: processes.Server, video: Path, new_key: Callable[..., Key]
) -> None:
    key = new_key(new_project=True)
    chunk = 64 * 1024
    with watched_context(browser, viewport=VIEWPORT, base_url=server.base_url) as context:
        page = context.new_page()
        sign_in(page, key.secret)
        deleted, _ = _begin_and_stop(page, video, "deleted meanwhile", chunk)
        with _api(server, key.secret) as api:
            assert api.delete(f"/asset/{deleted}").status_code == 204
        stale = _tus_entries(page)
        assert len(stale) == 1
        sent = _tus_requests(page, "/api/asset/upload/tus")
        fresh = _upload_from_page(page, video, "started anew")
        assert fresh != deleted
        _wait_upload_over(page, timeout_ms=60_000)
        assert page.locator("[data-upload-state]").get_attribute("data-upload-state") == "done"
        assert sent[0] == ("POST", None), sent  # a new upload, from the first byte
        assert next(offset for method, offset in sent if method == "PATCH") == "0", sent
        assert _tus_entries(page) == []  # the stale entry went, and the new one once done
    with _api(server, key.secret) as api:
        assert [asset["id"] for asset in api.get("/asset").json()] == [fresh]
    assert _wait_ready(server, key.secret, fresh)["size"] == video.stat().st_size


def test_a_reloaded_page_starts_anew_when_the_begun_uploads_url_is_refused(
    browser: Any, server: processes.Server, video: Path, new_key: Callable[..., Key]
) -> None:
    """The asset still waits, but its upload URL refuses to go on (as it does once expired):
    the page says so and sends the file to a new asset rather than failing."""
    key = new_key(new_project=True)
    with watched_context(browser, viewport=VIEWPORT, base_url=server.base_url) as context:
        page = context.new_page()
        sign_in(page, key.secret)
        refused, _ = _begin_and_stop(page, video, "refused later", 64 * 1024)
        _record_messages(page)
        page.route(
            lambda url: "/api/asset/upload/tus" in url and refused in url,
            lambda route: route.fulfill(status=403, body="invalid or expired signed upload URL"),
        )
        page.get_by_label("Video file").set_input_files(str(video))
        page.get_by_role("button", name="Upload").click()
        _wait_upload_over(page, timeout_ms=60_000)
        assert page.locator("[data-upload-state]").get_attribute("data-upload-state") == "done"
        panels = page.locator("#upload-area [data-asset-id]")
        assert panels.count() == 1
        fresh = panels.get_attribute("data-asset-id")
        assert fresh is not None and fresh != refused
        messages = " | ".join(page.evaluate("() => window.seenMessages"))
        assert "cannot go on (the service answered 403): starting anew" in messages, messages
        assert _tus_entries(page) == []
    assert _wait_ready(server, key.secret, fresh)["size"] == video.stat().st_size


def test_the_upload_page_forgets_abandoned_uploads_whose_url_has_expired(
    browser: Any, server: processes.Server, new_key: Callable[..., Key]
) -> None:
    """Uploads begun and never resumed (their file was never chosen again) stay remembered in
    localStorage until their signed URL expires; the upload page then forgets them when it
    loads.  A recent one stays, and so does what another script of the origin keeps."""
    key = new_key(new_project=True)
    lifetime_ms = uploads.URL_LIFETIME.total_seconds() * 1000
    hour_ms = 3600 * 1000
    mine = f"tus::mediatasks-{key.project_id}-clip.mp4-video/mp4-1000-1"
    remembered = {
        f"{mine}::1": lifetime_ms + hour_ms,  # expired an hour ago
        f"{mine}::2": lifetime_ms - hour_ms,  # an hour left
        "tus::another-app-file::3": lifetime_ms + hour_ms,
    }
    with watched_context(browser, viewport=VIEWPORT, base_url=server.base_url) as context:
        page = context.new_page()
        sign_in(page, key.secret)
        page.evaluate(
            """(remembered) => {
              for (const [key, ageMs] of Object.entries(remembered)) {
                // As tus-js-client writes an entry.
                localStorage.setItem(key, JSON.stringify({
                  size: 1000, metadata: {filename: "clip.mp4", assetId: "abandoned"},
                  creationTime: new Date(Date.now() - ageMs).toString(),
                  uploadUrl: location.origin + "/api/asset/upload/tus/abandoned?token=t",
                }));
              }
            }""",
            remembered,
        )
        assert sorted(_tus_entries(page)) == sorted(remembered)
        page.goto("/assets/new")
        page.wait_for_function(
            "(key) => localStorage.getItem(key) === null", arg=f"{mine}::1", timeout=5_000
        )
        assert sorted(_tus_entries(page)) == sorted([f"{mine}::2", "tus::another-app-file::3"])


def test_import_by_url_follows_the_task_until_ready(
    signed_in: Any,
    video: Path,
    screenshot: Callable[[Any, str], Path],
    assert_accessible: Callable[[Any], Any],
) -> None:
    page = signed_in
    page.goto("/assets/new")
    page.get_by_label("Video URL").fill("file:///etc/passwd")
    page.get_by_role("button", name="Import").click()
    alert = page.get_by_role("alert")
    assert "cannot be imported" in alert.inner_text()
    screenshot(page, "assets-new-refused-url")
    assert assert_accessible(page) == []  # not even a minor violation
    csrf = page.locator("#import-form input[name=csrf]").input_value()
    long = page.request.post(
        "/assets/new/import", form={"csrf": csrf, "url": "http://127.0.0.1/" + "a" * 5000}
    )
    assert long.status == 422 and "longer than 4096 characters" in long.text()

    # Served slowly (about 4 s), so that the pages show the import before it is ready.
    data = video.read_bytes()
    chunk = len(data) // 20 + 1
    with processes.trickle_server(data, chunk_bytes=chunk, pause_s=0.2) as url:
        page.get_by_label("Video URL").fill(url)
        page.get_by_label("Name").nth(1).fill("imported slowly")
        page.get_by_role("button", name="Import").click()
        page.wait_for_url(re.compile(r"/assets/[0-9a-f-]{36}$"))
        asset_id = page.url.rsplit("/", 1)[1]
        assert page.get_by_role("heading", level=1).inner_text() == "imported slowly"
        assert f"imported from {url}" in page.inner_text("main")
        _record_status(page, f"#asset-status-{asset_id}")
        page.wait_for_function(
            "() => window.seenStatus.some(s => s.startsWith('processing'))", timeout=60_000
        )
        screenshot(page, "asset-processing")
        assert assert_accessible(page) == []  # not even a minor violation

        # The list, in a second tab, follows it too, without a reload, until it is ready.
        listing = page.context.new_page()
        listing.goto("/assets")
        _record_status(listing, f"#asset-status-{asset_id}")
        listing.wait_for_function(
            "() => window.seenStatus.some(s => s.startsWith('ready'))", timeout=READY_TIMEOUT_MS
        )
    seen = listing.evaluate("() => window.seenStatus")
    assert seen[0].startswith(("waiting", "processing")), seen
    assert seen[-1] == "ready completed", seen
    assert listing.evaluate("() => window.notReloaded === true"), "the list was reloaded"

    # The asset's page, left open while it was made, shows its player by itself.
    _wait_playing(page)
    assert page.url.endswith(f"/assets/{asset_id}")
    assert page.get_by_role("link", name=re.compile(r"^Download MP4")).count() >= 1


def test_a_jwt_asset_plays_only_with_a_signed_token(
    signed_in: Any,
    server: processes.Server,
    media_server: str,
    video: Path,
    screenshot: Callable[[Any, str], Path],
    assert_accessible: Callable[[Any], Any],
) -> None:
    with _api(server, server.key) as api:
        created = api.post(
            "/asset/upload/url",
            json={
                "name": "gated",
                "url": f"{media_server}/{video.name}?gated",
                "playbackPolicy": {"type": "jwt"},
            },
        )
        assert created.status_code == 201, created.text
        asset_id = created.json()["asset"]["id"]
        key = api.post("/access-control/signing-key", json={"name": "browser"}).json()
    asset = _wait_ready(server, server.key, asset_id)
    page = signed_in
    page.goto(f"/assets/{asset_id}")
    assert "cannot sign a token" in page.locator("#policy-note").inner_text()
    assert page.locator("#player").is_hidden()
    screenshot(page, "asset-jwt")
    assert assert_accessible(page) == []  # not even a minor violation
    _fits_a_phone(page, "asset-jwt")

    page.get_by_label("Playback token (JWT)").fill("not-a-token")
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("() => document.getElementById('player').dataset.playerError")
    assert "refused" in page.locator("#player-message").inner_text()

    import base64

    private = base64.b64decode(key["privateKey"])
    token = jwt.encode(
        {
            "sub": asset["playbackId"],
            "pub": key["publicKey"],
            "exp": int((datetime.now(UTC) + timedelta(minutes=10)).timestamp()),
        },
        private,
        algorithm="ES256",
    )
    page.get_by_label("Playback token (JWT)").fill(token)
    page.get_by_role("button", name="Play").click()
    _wait_playing(page)


def test_delete_an_asset_after_confirming(
    signed_in: Any,
    server: processes.Server,
    media_server: str,
    video: Path,
    screenshot: Callable[[Any, str], Path],
    assert_accessible: Callable[[Any], Any],
) -> None:
    with _api(server, server.key) as api:
        created = api.post(
            "/asset/upload/url",
            json={"name": "to delete", "url": f"{media_server}/{video.name}?delete"},
        ).json()
    asset_id = created["asset"]["id"]
    page = signed_in
    page.goto(f"/assets/{asset_id}")
    page.get_by_role("link", name="Delete…").click()
    page.wait_for_url(f"**/assets/{asset_id}/delete")
    screenshot(page, "asset-delete")
    assert assert_accessible(page) == []  # not even a minor violation
    page.get_by_role("button", name="Delete the asset").click()
    assert "is deleted" in page.get_by_role("status").inner_text()
    screenshot(page, "asset-deleted")
    assert assert_accessible(page) == []  # not even a minor violation
    with _api(server, server.key) as api:
        assert api.get(f"/asset/{asset_id}").status_code == 404
    answer = page.goto(f"/assets/{asset_id}")
    assert answer is not None and answer.status == 404
    page.goto("/assets")
    assert page.locator(f"tr[data-asset-id='{asset_id}']").count() == 0


def test_a_delete_without_the_csrf_token_is_refused(
    signed_in: Any, server: processes.Server, media_server: str, video: Path
) -> None:
    with _api(server, server.key) as api:
        created = api.post(
            "/asset/upload/url",
            json={"name": "kept", "url": f"{media_server}/{video.name}?kept"},
        ).json()
    asset_id = created["asset"]["id"]
    answer = signed_in.request.post(f"/assets/{asset_id}/delete", form={"csrf": "forged"})
    assert answer.status == 403
    with _api(server, server.key) as api:
        assert api.get(f"/asset/{asset_id}").status_code == 200


def test_another_projects_asset_is_a_404_page(
    browser: Any,
    server: processes.Server,
    media_server: str,
    video: Path,
    new_key: Callable[..., Key],
    screenshot: Callable[[Any, str], Path],
    assert_accessible: Callable[[Any], Any],
) -> None:
    with _api(server, server.key) as api:
        created = api.post(
            "/asset/upload/url",
            json={"name": "first project's", "url": f"{media_server}/{video.name}?other"},
        ).json()
    asset_id = created["asset"]["id"]
    other = new_key(new_project=True)
    with watched_context(
        browser, viewport={"width": 1280, "height": 800}, base_url=server.base_url
    ) as context:
        page = context.new_page()
        sign_in(page, other.secret)
        for path in (f"/assets/{asset_id}", f"/assets/{asset_id}/delete"):
            answer = page.goto(path)
            assert answer is not None and answer.status == 404, path
            assert "first project's" not in page.content()
        screenshot(page, "asset-not-found")
        assert assert_accessible(page) == []  # not even a minor violation
        live = page.request.get(f"/assets/live?id={asset_id}").text()
        assert f"asset-{asset_id}" not in live and "event: done" in live
        answer = page.request.post(
            f"/assets/{asset_id}/delete",
            form={"csrf": page.locator("input[name=csrf]").first.input_value()},
        )
        assert answer.status == 404
        page.goto("/assets")
        assert page.locator(f"tr[data-asset-id='{asset_id}']").count() == 0
        assert "first project's" not in page.content()
        screenshot(page, "assets-empty")
        assert assert_accessible(page) == []  # not even a minor violation
    with _api(server, server.key) as api:
        assert api.get(f"/asset/{asset_id}").status_code == 200


def test_the_list_pages_stably_while_assets_are_added(
    browser: Any,
    server: processes.Server,
    new_key: Callable[..., Key],
    assert_accessible: Callable[[Any], Any],
) -> None:
    key = new_key(new_project=True)
    with _api(server, key.secret) as api:
        made = [
            api.post("/asset/request-upload", json={"name": f"waiting {i:02d}"}).json()["asset"]
            for i in range(45)
        ]
    with watched_context(
        browser, viewport={"width": 1280, "height": 800}, base_url=server.base_url
    ) as context:
        page = context.new_page()
        sign_in(page, key.secret)
        page.goto("/assets")
        seen: list[str] = []
        pages = 0
        while True:
            pages += 1
            rows = page.locator("tr[data-asset-id]")
            seen += rows.evaluate_all("rows => rows.map(r => r.dataset.assetId)")
            if pages == 1:
                assert assert_accessible(page) == []  # not even a minor violation
                # New assets arrive while the list is walked: they go before the first page.
                with _api(server, key.secret) as api:
                    api.post("/asset/request-upload", json={"name": "arrived later"})
            older = page.get_by_role("link", name="Older assets")
            if older.count() == 0:
                break
            older.click()
            page.wait_for_load_state()
        assert pages == 3
        # Every asset once, none twice, and none of those added during the walk.
        assert len(seen) == len(set(seen)) == len(made)
        assert set(seen) == {asset["id"] for asset in made}
        assert "uploading" in page.locator("tr[data-asset-id]").first.inner_text()
        answer = page.goto("/assets?after=garbage")
        assert answer is not None and answer.status == 400
        assert "not valid" in page.get_by_role("alert").inner_text()


def test_an_upload_that_is_not_a_video_says_why_it_failed(
    signed_in: Any,
    tmp_path: Path,
    screenshot: Callable[[Any, str], Path],
    assert_accessible: Callable[[Any], Any],
) -> None:
    page = signed_in
    page.goto("/assets/new")
    text = mediagen.make_text_file(tmp_path / "notes.mp4")
    asset_id = _upload_from_page(page, text, "not a video")
    status = page.locator(f"#asset-status-{asset_id} [data-asset-phase]")
    status.and_(page.locator("[data-asset-phase='failed']")).wait_for(timeout=READY_TIMEOUT_MS)
    shown = page.locator(f"#asset-status-{asset_id}").inner_text()
    assert "failed" in shown and page.locator(f"#asset-status-{asset_id} .asset-error").count()
    screenshot(page, "assets-new-failed")
    assert assert_accessible(page) == []  # not even a minor violation
    page.goto(f"/assets/{asset_id}")
    assert "The player appears when the asset is ready" in page.inner_text("main")
    assert page.locator("#player").count() == 0


def test_an_upload_after_the_session_ended_says_so(signed_in: Any, video: Path) -> None:
    page = signed_in
    page.goto("/assets/new")
    page.context.clear_cookies()
    page.get_by_label("Video file").set_input_files(str(video))
    page.get_by_role("button", name="Upload").click()
    message = page.locator("#upload-message")
    page.wait_for_function(
        "() => document.getElementById('upload-message').textContent.includes('could not start')"
    )
    assert "session has ended" in message.inner_text()
    assert page.locator("#upload-area [data-asset-id]").count() == 0
