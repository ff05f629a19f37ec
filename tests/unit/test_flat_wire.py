"""The Flat Task view (states, percent and text, dates, result, errorHistory) and signed links."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mediatasks import errors, settings, signing, tasks
from mediatasks.api.flat import links, wire
from mediatasks.scores import export, render

T0 = datetime(2026, 11, 22, 10, 0, 0, 10_500, tzinfo=UTC)


def a_task(phase: tasks.Phase, **changes: Any) -> tasks.Task:
    base = tasks.Task(
        id="t1",
        project_id="p1",
        type="audio-export",
        phase=phase,
        params={"score": "s" * 24, "revision": "r" * 24, "format": "mp3", "parts": []},
        created_at=T0,
        updated_at=T0 + timedelta(seconds=2),
        run_at=T0,
    )
    return base.evolve(**changes)


def an_event(name: str, error: str | None = None, event_id: int = 1) -> tasks.TaskEvent:
    return tasks.TaskEvent(
        id=event_id,
        task_id="t1",
        project_id="p1",
        name=name,
        phase=tasks.Phase.FAILED,
        progress=None,
        at=T0,
        data={"error": error} if error else {},
    )


@pytest.mark.parametrize(
    ("phase", "state"),
    [
        (tasks.Phase.PENDING, "created"),
        (tasks.Phase.WAITING, "created"),
        (tasks.Phase.RUNNING, "doing"),
        (tasks.Phase.COMPLETED, "done"),
        (tasks.Phase.FAILED, "error"),
        (tasks.Phase.CANCELLED, "canceled"),
    ],
)
def test_every_phase_maps_to_a_flat_state_never_blocked(phase: tasks.Phase, state: str) -> None:
    body = wire.task_json(a_task(phase), [], result_url="http://x/y")
    assert body["state"] == state
    assert body["isCancellable"] is (state == "created")
    assert set(wire.STATES) == set(tasks.Phase)
    assert "blocked" not in wire.STATES.values()


def test_dates_are_utc_with_milliseconds_and_z() -> None:
    assert wire.rfc3339(T0) == "2026-11-22T10:00:00.010Z"
    paris = T0.astimezone(ZoneInfo("Europe/Paris"))
    assert wire.rfc3339(paris) == "2026-11-22T10:00:00.010Z"
    body = wire.task_json(a_task(tasks.Phase.COMPLETED), [], result_url="http://x/y")
    assert body["creationDate"] == "2026-11-22T10:00:00.010Z"
    assert body["modificationDate"] == body["doneDate"] == "2026-11-22T10:00:02.010Z"


@pytest.mark.parametrize(
    ("progress", "percent", "text"),
    [
        (None, 0, "Starting"),
        (0.05, 5, "Starting"),
        (export.PARSING, 10, "Parsing score"),
        (0.5, 50, "Rendering audio"),
        (0.8125, 81.2, "Encoding"),
        (1.0, 100, "Publishing"),
    ],
)
def test_running_progress_is_a_percent_with_the_text_of_its_step(
    progress: float | None, percent: float, text: str
) -> None:
    body = wire.task_json(a_task(tasks.Phase.RUNNING, progress=progress), [], result_url=None)
    assert body["progress"] == {"percent": percent, "text": text}
    assert "doneDate" not in body and "result" not in body


def test_step_texts_cover_the_whole_range() -> None:
    bounds = [bound for bound, _ in export.STEPS]
    assert bounds == sorted(bounds) and bounds[-1] == 1.0
    assert export.PARSING < export.RENDERING < export.ENCODING < 1


def test_created_done_error_and_canceled_progress() -> None:
    waiting = wire.task_json(a_task(tasks.Phase.WAITING), [], result_url=None)
    assert waiting["progress"] == {"percent": 0, "text": "Waiting to be processed"}
    retrying = wire.task_json(a_task(tasks.Phase.WAITING, retries=1), [], result_url=None)
    assert retrying["progress"]["text"] == "Waiting to be retried"
    done = wire.task_json(a_task(tasks.Phase.COMPLETED), [], result_url="http://x/y")
    assert done["progress"] == {"percent": 100, "text": "Done"}
    assert done["result"] == {"url": "http://x/y"}
    canceled = wire.task_json(a_task(tasks.Phase.CANCELLED, progress=0.4), [], result_url=None)
    assert canceled["progress"] == {"percent": 40, "text": "Canceled"}
    assert "doneDate" not in canceled and "result" not in canceled


def test_error_has_result_error_and_one_history_entry_per_failed_attempt() -> None:
    events = [
        an_event("created"),
        an_event("claim"),
        an_event("retry_later", "internal error processing file", 3),
        an_event("claim"),
        an_event("rescue", "the worker running this task stopped responding", 5),
        an_event("claim"),
        an_event("fail", "Unable to render the score: it has no notes to play", 7),
    ]
    task = a_task(
        tasks.Phase.FAILED, error_message="Unable to render the score: it has no notes to play"
    )
    body = wire.task_json(task, events, result_url=None)
    assert body["result"] == {"error": "Unable to render the score: it has no notes to play"}
    assert body["errorHistory"] == [
        "internal error processing file",
        "the worker running this task stopped responding",
        "Unable to render the score: it has no notes to play",
    ]
    assert body["doneDate"] == "2026-11-22T10:00:02.010Z"
    assert "errorHistory" not in wire.task_json(a_task(tasks.Phase.RUNNING), [], result_url=None)


def test_task_carries_format_score_revision_and_type() -> None:
    body = wire.task_json(a_task(tasks.Phase.WAITING), [], result_url=None)
    assert body["type"] == "audio-export"
    assert (body["format"], body["score"], body["revision"]) == ("mp3", "s" * 24, "r" * 24)


# -- signed links ------------------------------------------------------------------------------
def test_signed_links_expire_and_refuse_tampering() -> None:
    signer = links.Signer(b"k" * 32)
    now = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
    expires = signer.expires(now)
    assert expires % 3600 == 0
    assert links.URL_LIFETIME_S <= expires - now.timestamp() <= links.URL_LIFETIME_S + 3600
    good = signer.signature("t1", expires)
    assert signer.check("t1", str(expires), good, now=now)
    assert signer.check("t1", str(expires), good, now=now + timedelta(hours=24))
    assert not signer.check("t1", str(expires), good, now=now + timedelta(hours=26))
    assert not signer.check("t2", str(expires), good, now=now)
    assert not signer.check("t1", str(expires + 3600), good, now=now)
    assert not signer.check("t1", str(expires), "0" + good[1:], now=now)
    assert not signer.check("t1", "²", good, now=now)
    assert not signer.check("t1", "", "", now=now)
    assert not links.Signer(b"other").check("t1", str(expires), good, now=now)
    # An upload link's signature of the same subject is no task-result link.
    assert not signer.check(
        "t1", str(expires), signing.sign(signer.key, "x", "t1", expires), now=now
    )


def test_secret_key_is_made_once_kept_private_and_reused(tmp_path: Path) -> None:
    config = settings.Settings(data_dir=tmp_path / "data")
    first = links.secret_key(config)
    path = tmp_path / "data" / signing.KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert links.secret_key(config) == first
    assert len(first) >= 32
    assert [p.name for p in path.parent.iterdir()] == [signing.KEY_FILE]
    configured = settings.Settings(data_dir=tmp_path / "other", secret_key="s3cret")
    assert links.secret_key(configured) == b"s3cret"
    assert not (tmp_path / "other").exists()


def test_secret_key_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIATASKS_SECRET_KEY", "from-env")
    assert links.secret_key(settings.Settings(data_dir=tmp_path)) == b"from-env"
    assert "from-env" not in repr(settings.Settings(data_dir=tmp_path))


# -- rendering commands ------------------------------------------------------------------------
def test_encode_command_trims_the_tail_after_the_music_and_fades() -> None:
    argv = render.encode_argv(
        "ffmpeg", Path("in.wav"), Path("out.mp3"), audio_format="mp3", music_s=4.0
    )
    assert argv[argv.index("-t") + 1] == "4.250"
    assert "afade=t=out:st=4.000:d=0.250" in argv[argv.index("-af") + 1]
    assert "libmp3lame" in argv
    wav = render.encode_argv("ffmpeg", Path("i"), Path("o.wav"), audio_format="wav", music_s=1)
    assert "pcm_s16le" in wav
    with pytest.raises(ValueError, match="flac"):
        render.encode_argv("ffmpeg", Path("i"), Path("o"), audio_format="flac", music_s=1)


def test_the_synthesizer_and_soundfont_come_from_wheels_or_the_setting(tmp_path: Path) -> None:
    bundled = render.find_synthesizer()
    assert bundled.soundfont.name == "TimGM6mb.sf2" and bundled.soundfont.is_file()
    assert bundled.soundfont.read_bytes()[:4] == b"RIFF"
    assert not str(bundled.soundfont).startswith("/usr/share")  # no system package needed
    assert render.synthesize_argv(bundled, Path("m.mid"), Path("o.wav"))[1:3] == [
        "-m",
        "mediatasks.scores.synth",
    ]
    with pytest.raises(errors.Unretriable, match="MEDIATASKS_SOUNDFONT_PATH"):
        render.find_synthesizer(str(tmp_path / "none.sf2"))
    font = tmp_path / "gm.sf2"
    font.write_bytes(b"RIFF")
    assert render.find_synthesizer(str(font)).soundfont == font


@pytest.mark.parametrize(
    ("music_s", "message"),
    [(0.0, "no notes to play"), (render.MAX_MUSIC_S + 1, "limited to 30 minutes")],
)
def test_check_duration(music_s: float, message: str) -> None:
    with pytest.raises(errors.Unretriable, match=message):
        render.check_duration(music_s)
