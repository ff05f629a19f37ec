"""The official ``flat-api`` client (2.0.4), from the SDK's virtual environment, against a real
``mediatasks serve`` process: scores from MusicXML and MIDI, mp3 and wav export tasks polled to
``done``, the result downloaded without a token and decoded with PyAV, lasting as long as the
score's own timing says; a cancelled task; a score that cannot render; bad scores refused."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import mido
import pytest
import verovio

from mediatasks.scores import render
from tests import processes, scoregen
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
SDK_PYTHON = ROOT / ".venv-sdk" / "bin" / "python"
FLOW = Path(__file__).with_name("flat_flow.py")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sdk_python() -> Path:
    if not SDK_PYTHON.exists():
        if IN_CI:
            raise RuntimeError("the SDK environment is missing: run ./scripts/test")
        pytest.skip("no .venv-sdk: ./scripts/test creates it")
    found = subprocess.run(
        [str(SDK_PYTHON), "-c", "import flat_api; print(flat_api.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        if IN_CI:
            raise RuntimeError(f"flat-api is missing from .venv-sdk: {found.stderr}")
        pytest.skip("flat-api is not installed in .venv-sdk: ./scripts/test installs it")
    assert found.stdout.strip() == "2.0.4"
    return SDK_PYTHON


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[processes.Server]:
    with processes.serve(tmp_path_factory.mktemp("flat")) as running:
        yield running
        print(running.proc.log()[-3000:])


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scores")
    duet = scoregen.musicxml(
        title="Duet", measures=4, tempo_qpm=100, parts=(("P1", "Piano", 1), ("P2", "Flute", 74))
    )
    (folder / "duet.musicxml").write_text(duet)
    (folder / "slow.musicxml").write_text(scoregen.musicxml(measures=8, tempo_qpm=1))
    tune = scoregen.midi_bytes(notes=10, beat_s=0.4, tracks=(("Piano", 0), ("Strings", 48)))
    (folder / "tune.mid").write_bytes(tune)
    return folder


def run_flow(python: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), str(FLOW), *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def musicxml_seconds(path: Path) -> float:
    """How long the score plays, by verovio's timemap (the score's own timing)."""
    toolkit = verovio.toolkit()
    assert toolkit.loadData(path.read_text())
    return max(entry["tstamp"] for entry in toolkit.renderToTimemap()) / 1000


def midi_seconds(path: Path) -> float:
    """How long the MIDI file plays, by mido's reading of it."""
    return float(mido.MidiFile(path).length)


def decoded(path: Path) -> tuple[str, float, int]:
    """Codec, duration from the decoded samples, and the peak sample (is it silent?)."""
    with av.open(io.BytesIO(path.read_bytes())) as container:
        stream = container.streams.audio[0]
        samples = 0
        peak = 0
        for frame in container.decode(stream):
            samples += frame.samples
            for plane in frame.planes:
                data = bytes(plane)
                if stream.codec_context.name.startswith("pcm_s16"):
                    values = memoryview(data).cast("h")
                    peak = max(peak, max((abs(v) for v in values), default=0))
                else:
                    peak = max(peak, int(any(data)))
        return stream.codec_context.name, samples / stream.rate, peak


def check_done_flow(seen: dict[str, Any], audio_format: str) -> None:
    final = seen["final"]
    assert final["state"] == "done", final
    assert seen["created"]["state"] == "created" and seen["created"]["is_cancellable"] is True
    assert seen["created"]["revision"] == seen["revisions"][0]
    percents = [poll["percent"] for poll in seen["polls"]]
    assert percents == sorted(percents), percents
    assert all(0 <= p <= 100 for p in percents) and percents[-1] == 100
    assert all(isinstance(poll["text"], str) and poll["text"] for poll in seen["polls"])
    assert final["type"] == "audio-export" and final["format"] == audio_format
    assert final["done_date"] and final["done_date"].endswith("+00:00")
    assert final["result_url"].startswith("http://127.0.0.1:")
    assert seen["download_type"] == ("audio/mpeg" if audio_format == "mp3" else "audio/wav")
    assert seen["revision_data_matches"] is True
    assert seen["midi_magic"] == "MThd"
    assert seen["thumbnail_magic"] == "89504e470d0a1a0a"  # PNG
    assert seen["partial_final"]["state"] == "done"
    assert seen["tampered_status"] == 403
    assert seen["flac_error"]["class"] == "FlatValidationError"
    assert json.loads(seen["flac_error"]["body"])["code"] == "SCORE_UNSUPPORTED_FORMAT"
    assert seen["missing_error"] == {"class": "FlatNotFoundError", "status": 404}


def test_musicxml_to_mp3(
    sdk_python: Path, server: processes.Server, scores: Path, tmp_path: Path
) -> None:
    out = tmp_path / "duet.mp3"
    path = scores / "duet.musicxml"
    seen = run_flow(
        sdk_python, "export", f"{server.base_url}/v2", server.key, str(path), "mp3", str(out)
    )
    check_done_flow(seen, "mp3")
    assert seen["score"]["title"] == "SDK duet"
    assert seen["score"]["instruments_names"] == ["Piano", "Flute"]
    assert seen["xml_starts"] == "<?xml"
    codec, duration_s, peak = decoded(out)
    assert codec.startswith("mp3")
    expected_s = musicxml_seconds(path)
    assert expected_s == pytest.approx(4 * 4 * 60 / 100)
    assert abs(duration_s - expected_s) < 0.5, (duration_s, expected_s)
    assert abs(duration_s - (expected_s + render.RELEASE_S)) < 0.06
    assert peak > 0


def test_midi_to_wav(
    sdk_python: Path, server: processes.Server, scores: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tune.wav"
    path = scores / "tune.mid"
    seen = run_flow(
        sdk_python, "export", f"{server.base_url}/v2", server.key, str(path), "wav", str(out)
    )
    check_done_flow(seen, "wav")
    assert [part["id"] for part in seen["score"]["parts"]] == ["P1", "P2"]
    codec, duration_s, peak = decoded(out)
    assert codec == "pcm_s16le"
    expected_s = midi_seconds(path)
    assert expected_s == pytest.approx(4.0)
    assert abs(duration_s - expected_s) < 0.5, (duration_s, expected_s)
    assert peak > 1000  # real sound, not silence


def test_a_score_that_cannot_render(
    sdk_python: Path, server: processes.Server, scores: Path, tmp_path: Path
) -> None:
    out = tmp_path / "never.mp3"
    path = scores / "slow.musicxml"
    seen = run_flow(
        sdk_python, "export", f"{server.base_url}/v2", server.key, str(path), "mp3", str(out)
    )
    final = seen["final"]
    assert final["state"] == "error", final
    assert "limited to 30 minutes" in final["result_error"]
    assert final["error_history"] == [final["result_error"]]
    assert final["result_url"] is None and final["done_date"]
    assert not out.exists()


def test_bad_scores_are_refused(sdk_python: Path, server: processes.Server, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "invalid.musicxml").write_text("<score-partwise><part-list>")
    (folder / "empty.musicxml").write_text("")
    (folder / "junk.mid").write_bytes(bytes(range(256)) * 8)
    (folder / "silent.mid").write_bytes(scoregen.midi_without_notes())
    (folder / "huge.musicxml").write_text(scoregen.huge_musicxml(9 * 1024**2))
    seen = run_flow(sdk_python, "bad", f"{server.base_url}/v2", server.key, str(folder))
    assert set(seen) == {p.name for p in folder.iterdir()}
    for name, error in seen.items():
        assert error["class"] == "FlatValidationError", (name, error)
        assert error["status"] == 400
        assert isinstance(error["body"]["code"], str) and error["body"]["message"], error
    assert "no notes" in seen["silent.mid"]["body"]["message"]
    assert "limit" in seen["huge.musicxml"]["body"]["message"]


def test_cancel_a_created_task(sdk_python: Path, scores: Path, tmp_path: Path) -> None:
    with processes.serve(tmp_path, "--no-worker") as idle:  # nothing claims the task
        seen = run_flow(
            sdk_python,
            "cancel",
            f"{idle.base_url}/v2",
            idle.key,
            str(scores / "duet.musicxml"),
        )
    assert seen["created"]["state"] == "created"
    assert seen["cancel_status"] == 200 and seen["cancel_body"]["state"] == "canceled"
    assert seen["after"]["state"] == "canceled" and seen["after"]["is_cancellable"] is False
    assert seen["again_status"] == 400
    assert seen["again_body"]["code"] == "TASK_NOT_CANCELLABLE"
