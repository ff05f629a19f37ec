"""What the Assets pages write: sizes, durations, page links, names and sources."""

from __future__ import annotations

from datetime import UTC, datetime

from mediatasks import assets
from mediatasks.web import assets as page


def test_sizes_durations_and_bitrates_read_as_people_write_them() -> None:
    assert page.human_bytes(0) == "0 B"
    assert page.human_bytes(999) == "999 B"
    assert page.human_bytes(797_500) == "797.5 kB"
    assert page.human_bytes(2_500_000_000) == "2.5 GB"
    assert page.human_bytes(None) == page.human_bytes(-1) == page.human_bytes(True) == "—"
    assert page.human_duration(5.02) == "0:05"
    assert page.human_duration(3725) == "1:02:05"
    assert page.human_duration("5") == "—"
    assert page.human_bitrate(601_234) == "601 kbit/s"
    assert page.human_bitrate(1_400_000) == "1.4 Mbit/s"


def test_a_page_link_holds_the_last_row_and_nothing_else() -> None:
    assert page._parse_cursor(page._cursor((1733061234000, "ab-cd"))) == (1733061234000, "ab-cd")
    for bad in ("", "garbage", "12.", ".id", "12.a b", "1" * 20 + ".id", "12.x/../y"):
        assert page._parse_cursor(bad) is None, bad


def test_an_import_is_named_after_its_file_and_shown_without_credentials() -> None:
    assert page._name_of_url("http://127.0.0.1:8/films/clip.mp4?x=1#t") == "clip.mp4"
    assert page._name_of_url("http://127.0.0.1:8/") == "127.0.0.1:8"
    now = datetime.now(UTC)
    asset = assets.Asset(
        id="a",
        project_id="p",
        name="n",
        playback_id="abcd",
        phase=assets.AssetPhase.WAITING,
        source={"type": "url", "url": "https://user:secret@127.0.0.1/v.mp4?token=hidden"},
        options={},
        media={},
        created_at=now,
        updated_at=now,
    )
    shown = page._source_text(asset)
    assert "secret" not in shown and "hidden" not in shown
    assert shown.startswith("imported from https://***:***@127.0.0.1/v.mp4")
