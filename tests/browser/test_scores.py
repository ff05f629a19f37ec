"""The score pages in a real browser, against a real ``mediatasks serve`` with its worker: import
a score from the page, export it to wav and watch the progress reach done without reloading,
then play the result in the page's audio player."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import processes, scoregen
from tests.browser.conftest import Key, sign_in, watched_context
from tests.browser.layout import assert_fits_a_phone

pytestmark = pytest.mark.slow

#: 4 bars of 4 quarter notes at 120 per minute: 8 seconds of music.
MEASURES, TEMPO_QPM = 4, 120
SECONDS = MEASURES * 4 * 60 / TEMPO_QPM


def test_import_a_score_and_export_it_to_wav_with_live_progress_and_a_player(
    signed_in: Any,
    server: processes.Server,
    tmp_path: Path,
    new_key: Callable[..., Key],
    screenshot: Callable[[Any, str], object],
    assert_accessible: Callable[[Any], list[dict[str, Any]]],
) -> None:
    page = signed_in
    duet = tmp_path / "duet.musicxml"
    duet.write_text(
        scoregen.musicxml(
            title="Browser Duet",
            measures=MEASURES,
            tempo_qpm=TEMPO_QPM,
            parts=(("P1", "Piano", 1), ("P2", "Flute", 74)),
        )
    )
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Scores").click()
    page.wait_for_url(re.compile(r"/scores$"))
    screenshot(page, "scores-list")
    assert assert_accessible(page) == []  # not even a minor violation

    # A file that is not a score is refused with the reason.
    not_a_score = tmp_path / "notes.txt"
    not_a_score.write_text("these are not notes")
    page.get_by_label("Score file").set_input_files(str(not_a_score))
    page.get_by_role("button", name="Import").click()
    assert "cannot be imported" in page.get_by_role("alert").inner_text()
    screenshot(page, "scores-import-refused")
    assert assert_accessible(page) == []  # not even a minor violation

    page.get_by_label("Score file").set_input_files(str(duet))
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(re.compile(r"/scores/[0-9a-f]{24}\?imported=1$"))
    score_url = page.url.split("?")[0]
    score_id = score_url.rsplit("/", 1)[1]
    assert page.get_by_role("heading", name="Score Browser Duet").is_visible()
    assert page.get_by_text("Piano, Flute").is_visible()
    assert page.get_by_text("No export yet.").is_visible()
    screenshot(page, "score")
    assert assert_accessible(page) == []  # not even a minor violation

    # The same score through Flat's API: the page and /v2 share it.
    seen = httpx.get(
        f"{server.base_url}/v2/scores/{score_id}",
        headers={"Authorization": f"Bearer {server.key}"},
        timeout=10,
    )
    assert seen.status_code == 200 and seen.json()["title"] == "Browser Duet"

    page.get_by_label("wav").check()
    page.get_by_role("button", name="Export").click()
    page.wait_for_url(re.compile(rf"/scores/{score_id}$"))
    row = page.locator("#exports > li").first
    task_id = (row.get_attribute("id") or "").removeprefix("export-")
    phases = {row.get_attribute("data-phase")}
    # The row moves by itself (no reload): record each phase it shows until it is done.
    page.evaluate(
        """() => { window.seenPhases = new Set();
            const record = () => document.querySelectorAll('#exports > li').forEach(
                li => window.seenPhases.add(li.dataset.phase));
            record(); new MutationObserver(record).observe(
                document.getElementById('exports'), {subtree: true, childList: true}); }"""
    )
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    done = page.locator(f"#export-{task_id}[data-phase=completed]")
    done.wait_for(timeout=120_000)
    phases |= set(page.evaluate("[...window.seenPhases]"))
    assert navigations == []
    assert "completed" in phases and phases & {"waiting", "running"}, phases
    assert "Done" in done.inner_text() and "100 %" in done.inner_text()

    # The player loads the wav: its duration is the score's.
    audio = done.locator("audio")
    audio.wait_for()
    page.wait_for_function(
        f"() => document.querySelector('#export-{task_id} audio').readyState >= 1", timeout=30_000
    )
    duration = audio.evaluate("a => a.duration")
    assert duration == pytest.approx(SECONDS, abs=1.5)
    assert audio.evaluate("a => a.error") is None
    audio.evaluate("a => { a.muted = true; return a.play(); }")
    page.wait_for_function(
        f"() => document.querySelector('#export-{task_id} audio').currentTime > 0.5", timeout=30_000
    )
    # After it is done, the row no longer refreshes: the player is not replaced while it plays.
    assert done.get_attribute("hx-trigger") is None
    done.scroll_into_view_if_needed()
    screenshot(page, "score-exported")
    assert_fits_a_phone(page)
    assert assert_accessible(page) == []  # not even a minor violation

    # The audio is the project's: another project's session gets a 404, and so does no session.
    answer = page.request.get(f"/scores/exports/{task_id}/audio")
    assert answer.status == 200 and answer.headers["content-type"] == "audio/wav"
    assert answer.body()[:4] == b"RIFF"
    other = new_key()
    with watched_context(page.context.browser, base_url=server.base_url) as other_context:
        other_page = other_context.new_page()
        sign_in(other_page, other.secret)
        assert other_page.request.get(f"/scores/exports/{task_id}/audio").status == 404
        assert other_page.goto(score_url).status == 404
        other_page.goto("/scores")
        assert other_page.get_by_text("No score yet").is_visible()
    anonymous = httpx.get(f"{server.base_url}/scores/exports/{task_id}/audio", timeout=10)
    assert anonymous.status_code == 303 and "/sign-in" in anonymous.headers["location"]

    page.goto("/scores")
    assert page.get_by_role("link", name="Browser Duet").first.is_visible()
    screenshot(page, "scores-list-filled")
    assert assert_accessible(page) == []  # not even a minor violation


def test_an_export_of_an_unknown_format_is_refused_on_the_page(
    signed_in: Any, tmp_path: Path
) -> None:
    page = signed_in
    solo = tmp_path / "solo.musicxml"
    solo.write_text(scoregen.musicxml(title="Solo"))
    page.goto("/scores")
    page.get_by_label("Score file").set_input_files(str(solo))
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(re.compile(r"\?imported=1$"))
    page.locator("input[name=format]").first.evaluate("radio => { radio.value = 'flac'; }")
    with page.expect_response(re.compile(r"/exports$")) as answer:
        page.get_by_role("button", name="Export").click()
    assert answer.value.status == 422
    assert "mp3 or wav" in page.get_by_role("alert").inner_text()
    assert page.get_by_text("No export yet.").is_visible()
