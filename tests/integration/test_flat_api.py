"""Flat's ``/v2`` through the whole application and a worker in this process, on both task stores:
scores in, real audio out; bad scores refused with a ``FlatErrorResponse`` or failing their task
readably; cancel; one project never sees another's scores or tasks."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from mediatasks import app, settings, tasks, taskstore
from mediatasks.api.runtime import Runtime
from mediatasks.blobstore.local import LocalBlobStore
from mediatasks.scores import render, source
from mediatasks.worker import handlers, loop
from tests import scoregen

pytestmark = pytest.mark.slow


@dataclasses.dataclass
class Flat:
    """The service as its users see it, and what the tests need behind it."""

    client: httpx.AsyncClient
    other: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    runtime: Runtime
    project_id: str
    worker: loop.Worker | None = None
    worker_job: asyncio.Task[None] | None = None

    def start_worker(self) -> None:
        config = self.runtime.settings
        self.worker = loop.Worker(
            config, self.runtime.store, self.runtime.blobs, handlers.registry()
        )
        self.worker_job = asyncio.create_task(self.worker.run())

    async def stop_worker(self) -> None:
        if self.worker is not None and self.worker_job is not None:
            self.worker.stop()
            await self.worker_job
            self.worker = self.worker_job = None


@pytest.fixture
async def flat(store: taskstore.TaskStore, tmp_path: Path) -> AsyncIterator[Flat]:
    config = settings.Settings(
        data_dir=tmp_path / "data",
        retry_backoff_s=[0.05],
        lease_s=10,
        heartbeat_interval_s=0.5,
        poll_interval_s=0.05,
        shutdown_grace_s=0,
    )
    blobs = LocalBlobStore(config.media_dir)
    runtime = Runtime(settings=config, store=store, blobs=blobs)
    project = await store.create_project("p")
    _, secret = await store.create_api_key(project.id, "k")
    stranger = await store.create_project("q")
    _, other_secret = await store.create_api_key(stranger.id, "k")
    application = app.create_app(config, with_worker=False, runtime=runtime)
    transport = httpx.ASGITransport(app=application)
    base = "http://testserver/v2"
    async with (
        httpx.AsyncClient(
            transport=transport, base_url=base, headers={"Authorization": f"Bearer {secret}"}
        ) as client,
        httpx.AsyncClient(
            transport=transport,
            base_url=base,
            headers={"Authorization": f"Bearer {other_secret}"},
        ) as other,
        httpx.AsyncClient(transport=transport, base_url=base) as anonymous,
    ):
        service = Flat(
            client=client,
            other=other,
            anonymous=anonymous,
            runtime=runtime,
            project_id=project.id,
        )
        try:
            yield service
        finally:
            await service.stop_worker()
    await blobs.close()


async def create_score(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/scores", json={"privacy": "private", **body})
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def finish(client: httpx.AsyncClient, task_id: str, timeout_s: float = 60) -> list[Any]:
    """Every view of the task until it ends, the last one terminal."""
    seen = []
    async with asyncio.timeout(timeout_s):
        while True:
            response = await client.get(f"/tasks/{task_id}")
            assert response.status_code == 200, response.text
            seen.append(response.json())
            if seen[-1]["state"] in ("done", "error", "canceled"):
                return seen
            await asyncio.sleep(0.02)


def audio_info(data: bytes) -> tuple[str, float]:
    """The codec and duration (from the decoded samples) of an audio file."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return stream.codec_context.name, samples / stream.rate


def assert_flat_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["code"], str) and isinstance(body["message"], str), body
    assert body["message"]
    if code is not None:
        assert body["code"] == code, body


# -- the main flow -----------------------------------------------------------------------------
async def test_musicxml_to_mp3_end_to_end(flat: Flat) -> None:
    flat.start_worker()
    text = scoregen.musicxml(
        title="Duet", measures=3, parts=(("P1", "Piano", 1), ("P2", "Flute", 74))
    )
    response = await flat.client.post("/scores", json={"data": text, "privacy": "private"})
    assert response.status_code == 200, response.text
    score = response.json()
    revision_id = response.headers["X-Flat-Score-Revision"]
    assert response.headers["X-Flat-Score-Revision-Date"].endswith("Z")
    assert score["title"] == "Duet" and score["privacy"] == "private"
    assert score["user"]["picture"] and score["collaborators"][0]["aclAdmin"] is True
    assert score["instrumentsNames"] == ["Piano", "Flute"]
    assert [part["id"] for part in score["parts"]] == ["P1", "P2"]

    assert (await flat.client.get(f"/scores/{score['id']}")).json()["id"] == score["id"]
    revisions = (await flat.client.get(f"/scores/{score['id']}/revisions")).json()
    assert [r["id"] for r in revisions] == [revision_id]
    last = (await flat.client.get(f"/scores/{score['id']}/revisions/last")).json()
    assert last["id"] == revision_id and last["score"] == score["id"]

    # Exactly what the official client sends without options: an empty JSON body.
    response = await flat.client.post(
        f"/scores/{score['id']}/revisions/last/mp3/task",
        content=b"",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["state"] == "created" and created["isCancellable"] is True
    assert created["revision"] == revision_id and created["format"] == "mp3"
    assert created["type"] == "audio-export" and created["score"] == score["id"]

    views = await finish(flat.client, created["id"])
    done = views[-1]
    assert done["state"] == "done", done
    percents = [view["progress"]["percent"] for view in views]
    assert percents == sorted(percents) and percents[-1] == 100
    assert all(isinstance(view["progress"]["text"], str) for view in views)
    assert done["doneDate"] == done["modificationDate"]
    assert done["isCancellable"] is False and "errorHistory" not in done
    url = done["result"]["url"]
    assert url.startswith(f"http://testserver/v2/exports/{created['id']}/score.mp3?expires=")

    download = await flat.anonymous.get(url)
    assert download.status_code == 200
    assert download.headers["content-type"] == "audio/mpeg"
    codec, duration_s = audio_info(download.content)
    assert codec.startswith("mp3")
    assert abs(duration_s - 6.0) < 0.5  # 3 bars of 4/4 at 120 qpm
    assert abs(duration_s - (6.0 + render.RELEASE_S)) < 0.06

    # The synchronous download of the same rendering ignores Accept.
    again = await flat.client.get(
        f"/scores/{score['id']}/revisions/{revision_id}/mp3",
        headers={"Accept": "application/json"},
    )
    assert again.status_code == 200 and again.content == download.content
    assert again.headers["X-Flat-Score-Revision"] == revision_id

    # Tampered or token-less-but-unsigned links are refused.
    assert_flat_error(await flat.anonymous.get(url.replace("signature=", "signature=f")), 403)
    assert_flat_error(await flat.anonymous.get(url.split("?")[0]), 403)


async def test_parts_are_honoured(flat: Flat) -> None:
    flat.start_worker()
    text = scoregen.musicxml(measures=2, parts=(("P1", "Piano", 1), ("P2", "Flute", 74)))
    score = await create_score(flat.client, data=text)
    base = f"/scores/{score['id']}/revisions/last"
    response = await flat.client.post(f"{base}/wav/task", json={"parts": ["P2"]})
    assert response.status_code == 200, response.text
    done = (await finish(flat.client, response.json()["id"]))[-1]
    assert done["state"] == "done", done
    wav = (await flat.anonymous.get(done["result"]["url"])).content
    assert audio_info(wav)[0] == "pcm_s16le"

    assert (await flat.client.get(f"{base}/wav", params={"parts": "P2"})).content == wav
    assert_flat_error(await flat.client.get(f"{base}/wav"), 404, "SCORE_EXPORT_NOT_FOUND")
    assert_flat_error(await flat.client.get(f"{base}/wav", params={"parts": "P9"}), 400)

    xml = (await flat.client.get(f"{base}/xml", params={"parts": "P2"})).content
    assert b'id="P2"' in xml and b'id="P1"' not in xml
    assert_flat_error(await flat.client.post(f"{base}/mp3/task", json={"parts": ["nope"]}), 400)
    assert_flat_error(await flat.client.post(f"{base}/mp3/task", json={"parts": "P1"}), 400)


async def test_midi_sent_as_base64_without_encoding_renders_to_wav(flat: Flat) -> None:
    flat.start_worker()
    data = scoregen.midi_bytes(notes=6, beat_s=0.5, tracks=(("Piano", 0), ("Strings", 48)))
    score = await create_score(flat.client, data=base64.b64encode(data).decode(), filename="a.mid")
    assert score["title"] == "Generated"
    assert score["instruments"] == ["keyboards.piano", "ensemble.ensemble"]
    base = f"/scores/{score['id']}/revisions/last"
    task = (await flat.client.post(f"{base}/wav/task")).json()
    done = (await finish(flat.client, task["id"]))[-1]
    assert done["state"] == "done", done
    codec, duration_s = audio_info((await flat.anonymous.get(done["result"]["url"])).content)
    assert codec == "pcm_s16le"
    assert abs(duration_s - 3.0) < 0.5

    assert (await flat.client.get(f"{base}/midi")).content == data
    one_track = (await flat.client.get(f"{base}/midi", params={"parts": "P2"})).content
    assert one_track.startswith(b"MThd") and one_track != data
    # MIDI has no notation: xml and mxl are a quantized transcription of it.
    xml = await flat.client.get(f"{base}/xml", params={"parts": "P2"})
    assert xml.status_code == 200 and b"<part-name>Strings</part-name>" in xml.content
    assert b"Piano" not in xml.content
    assert (await flat.client.get(f"{base}/mxl")).content.startswith(b"PK\x03\x04")


async def test_musicxml_exports_xml_mxl_and_midi(flat: Flat) -> None:
    text = scoregen.musicxml(title="Formats")
    score = await create_score(flat.client, data=text)
    base = f"/scores/{score['id']}/revisions/last"
    xml = await flat.client.get(f"{base}/xml", headers={"Accept": "application/json"})
    assert xml.status_code == 200 and b"<score-partwise" in xml.content
    mxl = await flat.client.get(f"{base}/mxl")
    assert mxl.status_code == 200 and mxl.content.startswith(b"PK\x03\x04")
    midi = await flat.client.get(f"{base}/midi")
    assert midi.status_code == 200 and midi.content.startswith(b"MThd")
    assert_flat_error(await flat.client.get(f"{base}/json"), 400, "SCORE_UNSUPPORTED_FORMAT")
    packed = base64.b64encode(mxl.content).decode()
    from_mxl = await create_score(flat.client, data=packed, dataEncoding="base64")
    assert from_mxl["title"] == "Formats"


def png_picture(data: bytes) -> tuple[int, int, float]:
    """Width, height and the share of dark pixels of a PNG image, decoded by PyAV."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
    plane = frame.reformat(format="gray").planes[0]
    rows = bytes(plane)
    pixels = [
        rows[y * plane.line_size + x] for y in range(frame.height) for x in range(frame.width)
    ]
    return frame.width, frame.height, sum(p < 128 for p in pixels) / len(pixels)


async def test_a_revision_thumbnail_is_its_first_page_as_png(flat: Flat) -> None:
    one = await create_score(flat.client, data=scoregen.musicxml(measures=2))
    four = await create_score(
        flat.client,
        data=scoregen.musicxml(measures=2, parts=[(f"P{i}", f"Voice {i}", 1) for i in range(4)]),
    )
    answers = []
    for score in (one, four):
        answer = await flat.client.get(f"/scores/{score['id']}/revisions/last/thumbnail.png")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "image/png"
        assert answer.headers["x-flat-score-revision"]
        answers.append(png_picture(answer.content))
    (width, height, ink), (width4, height4, _) = answers
    assert width == width4 == 840  # an A4 page's width at 40 %
    assert 0.005 < ink < 0.5, "the staff and notes are drawn in black on white"
    assert height4 > 2 * height, "four staves are taller than one"
    # Parts select what is drawn, as for the other formats.
    only = await flat.client.get(
        f"/scores/{four['id']}/revisions/last/thumbnail.png", params={"parts": "P1"}
    )
    assert png_picture(only.content)[1] < height4 / 2


async def test_a_midi_revision_thumbnail_draws_its_transcription(flat: Flat) -> None:
    data = scoregen.midi_bytes(notes=6, beat_s=0.5)
    score = await create_score(flat.client, data=base64.b64encode(data).decode(), filename="a.mid")
    answer = await flat.client.get(f"/scores/{score['id']}/revisions/last/thumbnail.png")
    assert answer.status_code == 200
    assert png_picture(answer.content)[2] > 0.005


# -- bad input ---------------------------------------------------------------------------------
BAD_SCORES: list[tuple[str, Any]] = [
    ("invalid XML", {"data": "<score-partwise><part-list>"}),
    ("empty document", {"data": ""}),
    ("empty score", {"data": '<?xml version="1.0"?><score-partwise version="4.0"/>'}),
    ("only rests", {"data": scoregen.musicxml(notes=False)}),
    ("binary junk", {"data": base64.b64encode(bytes(range(256)) * 4).decode()}),
    ("text junk", {"data": "this is not a score"}),
    ("MIDI with no notes", {"data": base64.b64encode(scoregen.midi_without_notes()).decode()}),
    ("truncated MIDI", {"data": base64.b64encode(scoregen.midi_bytes()[:40]).decode()}),
    ("PDF", {"data": base64.b64encode(b"%PDF-1.4 hello").decode()}),
    ("no data", {"title": "builder", "builderData": {"scoreData": {}}}),
    ("wrong privacy", {"data": scoregen.musicxml(), "privacy": "everyone"}),
    ("data of the wrong type", {"data": 42}),
]


@pytest.mark.parametrize(("name", "body"), BAD_SCORES, ids=[name for name, _ in BAD_SCORES])
async def test_bad_scores_are_refused_with_400(flat: Flat, name: str, body: Any) -> None:
    assert_flat_error(await flat.client.post("/scores", json=body), 400)


async def test_malformed_bodies_are_400_client_error(flat: Flat) -> None:
    for raw in (b"{nope", b"[1, 2]", b'"text"', b"", b"\xff\xfe"):
        response = await flat.client.post(
            "/scores", content=raw, headers={"Content-Type": "application/json"}
        )
        assert_flat_error(response, 400, "CLIENT_ERROR")


async def test_a_huge_score_is_refused_at_creation(flat: Flat) -> None:
    huge = scoregen.huge_musicxml(source.MAX_SOURCE_BYTES + 1024)
    response = await flat.client.post("/scores", json={"data": huge})
    assert_flat_error(response, 400, "SCORE_UNSUPPORTED_FORMAT")
    assert "limit is 8 MiB" in response.json()["message"]
    body = b'{"data": "' + b"A" * (12 * 1024**2) + b'"}'
    response = await flat.client.post("/scores", content=body)
    assert_flat_error(response, 400, "SCORE_TOO_LARGE")


async def test_a_score_too_long_to_render_fails_its_task_readably(flat: Flat) -> None:
    flat.start_worker()
    slow = scoregen.musicxml(measures=8, tempo_qpm=1)  # 32 minutes of music
    score = await create_score(flat.client, data=slow)
    task = (await flat.client.post(f"/scores/{score['id']}/revisions/last/mp3/task")).json()
    failed = (await finish(flat.client, task["id"]))[-1]
    assert failed["state"] == "error", failed
    assert "limited to 30 minutes" in failed["result"]["error"]
    assert failed["errorHistory"] == [failed["result"]["error"]]
    assert failed["doneDate"] and "url" not in failed["result"]


async def test_parts_without_notes_fail_their_task_readably(flat: Flat) -> None:
    flat.start_worker()
    text = scoregen.musicxml(parts=(("P1", "Piano", 1),)).replace(
        "</part-list>", '<score-part id="P2"><part-name>Silent</part-name></score-part></part-list>'
    )
    text = text.replace(
        "</score-partwise>",
        '<part id="P2"><measure number="1"><attributes><divisions>1</divisions></attributes>'
        "<note><rest/><duration>4</duration></note></measure></part></score-partwise>",
    )
    score = await create_score(flat.client, data=text)
    url = f"/scores/{score['id']}/revisions/last/mp3/task"
    task = (await flat.client.post(url, json={"parts": ["P2"]})).json()
    failed = (await finish(flat.client, task["id"]))[-1]
    assert failed["state"] == "error"
    assert failed["result"]["error"] == "Unable to render the score: it has no notes to play"


async def test_a_missing_soundfont_is_a_task_error_not_a_crash(
    flat: Flat, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(flat.runtime.settings, "soundfont_path", str(tmp_path / "none.sf2"))
    flat.start_worker()
    score = await create_score(flat.client, data=scoregen.musicxml())
    task = (await flat.client.post(f"/scores/{score['id']}/revisions/last/mp3/task")).json()
    failed = (await finish(flat.client, task["id"]))[-1]
    assert failed["state"] == "error"
    assert failed["result"]["error"] == (
        "audio rendering is not available on this server: the SoundFont "
        f"{tmp_path / 'none.sf2'} (MEDIATASKS_SOUNDFONT_PATH) does not exist"
    )


async def test_audio_exports_need_no_system_synthesizer(
    flat: Flat, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Nothing on PATH: no fluidsynth, no system FFmpeg; the wheels bring what it takes.
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    flat.start_worker()
    score = await create_score(flat.client, data=scoregen.musicxml(measures=2))
    task = (await flat.client.post(f"/scores/{score['id']}/revisions/last/wav/task")).json()
    done = (await finish(flat.client, task["id"]))[-1]
    assert done["state"] == "done", done
    codec, duration_s = audio_info((await flat.anonymous.get(done["result"]["url"])).content)
    assert codec == "pcm_s16le" and abs(duration_s - (4.0 + render.RELEASE_S)) < 0.06


async def test_export_task_refusals(flat: Flat) -> None:
    score = await create_score(flat.client, data=scoregen.musicxml())
    base = f"/scores/{score['id']}/revisions"
    for audio_format in ("flac", "midi", "xml", "practicefirst"):
        response = await flat.client.post(f"{base}/last/{audio_format}/task")
        assert_flat_error(response, 400, "SCORE_UNSUPPORTED_FORMAT")
    assert_flat_error(await flat.client.post(f"{base}/{'0' * 24}/mp3/task"), 404)
    assert_flat_error(await flat.client.post(f"/scores/{'0' * 24}/revisions/last/mp3/task"), 404)
    assert_flat_error(await flat.client.post("/scores/..%2F..%2Fetc/revisions/last/mp3/task"), 404)
    assert_flat_error(await flat.client.post(f"{base}/last/mp3/task", content=b"{bad"), 400)


# -- cancel ------------------------------------------------------------------------------------
async def test_cancel_while_created_only(flat: Flat) -> None:
    score = await create_score(flat.client, data=scoregen.musicxml())
    url = f"/scores/{score['id']}/revisions/last/mp3/task"
    created = (await flat.client.post(url)).json()
    response = await flat.client.post(f"/tasks/{created['id']}/cancel")
    assert response.status_code == 200, response.text
    canceled = response.json()
    assert canceled["state"] == "canceled" and canceled["isCancellable"] is False
    again = await flat.client.post(f"/tasks/{created['id']}/cancel")
    assert_flat_error(again, 400, "TASK_NOT_CANCELLABLE")

    # A task a worker holds (doing) is no longer cancellable through Flat.
    running = (await flat.client.post(url)).json()
    claimed = await flat.runtime.store.claim(
        "test-worker", types=[tasks.TaskType.AUDIO_EXPORT], limit=1, lease_s=30
    )
    assert [task.id for task in claimed] == [running["id"]]
    assert_flat_error(
        await flat.client.post(f"/tasks/{running['id']}/cancel"), 400, "TASK_NOT_CANCELLABLE"
    )
    assert (await flat.client.get(f"/tasks/{running['id']}")).json()["state"] == "doing"

    flat.start_worker()  # the canceled task is never run
    await asyncio.sleep(0.3)
    after = (await flat.client.get(f"/tasks/{created['id']}")).json()
    assert after["state"] == "canceled"


# -- who sees what -----------------------------------------------------------------------------
async def test_another_project_sees_nothing(flat: Flat) -> None:
    flat.start_worker()
    score = await create_score(flat.client, data=scoregen.musicxml())
    task = (await flat.client.post(f"/scores/{score['id']}/revisions/last/mp3/task")).json()
    done = (await finish(flat.client, task["id"]))[-1]
    scoped = [
        ("GET", f"/scores/{score['id']}"),
        ("GET", f"/scores/{score['id']}/revisions"),
        ("GET", f"/scores/{score['id']}/revisions/last"),
        ("GET", f"/scores/{score['id']}/revisions/last/xml"),
        ("GET", f"/scores/{score['id']}/revisions/last/mp3"),
        ("POST", f"/scores/{score['id']}/revisions/last/mp3/task"),
        ("GET", f"/tasks/{task['id']}"),
        ("POST", f"/tasks/{task['id']}/cancel"),
    ]
    for method, path in scoped:
        assert_flat_error(await flat.other.request(method, path), 404)
        assert (await flat.client.request(method, path)).status_code in (200, 400)
    # The signed link is the credential: it works for whoever holds it.
    assert (await flat.other.get(done["result"]["url"])).status_code == 200


async def test_tokens_are_required(flat: Flat) -> None:
    score = await create_score(flat.client, data=scoregen.musicxml())
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dTpw"}):
        response = await flat.anonymous.get(f"/scores/{score['id']}", headers=headers)
        assert_flat_error(response, 401, "UNAUTHORIZED")
    assert_flat_error(await flat.anonymous.post("/scores", json={"data": "x"}), 401)


async def test_only_audio_exports_are_flat_tasks(flat: Flat) -> None:
    other = await flat.runtime.store.create_task(
        taskstore.NewTask(project_id=flat.project_id, type=tasks.TaskType.NOOP, params={})
    )
    assert_flat_error(await flat.client.get(f"/tasks/{other.id}"), 404, "TASK_NOT_FOUND")
    assert_flat_error(await flat.client.get("/tasks/does-not-exist"), 404, "TASK_NOT_FOUND")
    assert_flat_error(await flat.client.get("/no/such/route"), 404)
    assert_flat_error(await flat.client.delete("/tasks/x"), 405)
