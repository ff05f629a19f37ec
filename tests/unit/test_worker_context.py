"""What a task's timeline may show of this server: no path of its work or data folder, nor
FFmpeg's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mediatasks import settings, tasks
from mediatasks.blobstore.memory import MemoryBlobStore
from mediatasks.worker import handler

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _context(data_dir: Path) -> handler.Context:
    config = settings.Settings(data_dir=data_dir)
    task = tasks.Task(
        id="t1",
        project_id="p",
        type="upload",
        phase=tasks.Phase.RUNNING,
        params={},
        created_at=T0,
        updated_at=T0,
        run_at=T0,
    )
    return handler.Context(
        task=task,
        settings=config,
        store=None,  # type: ignore[arg-type]
        blobs=MemoryBlobStore(),
        work_path=config.work_dir / task.id,
    )


def test_public_facts_show_no_path_of_this_server(tmp_path: Path) -> None:
    ctx = _context(tmp_path / "data")
    ctx.private_folders.append("/opt/venv/lib/imageio_ffmpeg/binaries")
    work = tmp_path / "data" / "work" / "t1"
    facts = {
        "ffmpeg": {
            "version": "ffmpeg version 7.1",
            "command": [
                "/opt/venv/lib/imageio_ffmpeg/binaries/ffmpeg-linux64",
                "-i",
                str(work / "source"),
                str(work / "hls" / "360p0" / "index.m3u8"),
            ],
        },
        "stderr": f"{work}/source: Invalid data found when processing input\nin {work}",
        "repr": f"FileNotFoundError(2, 'No such file', '{tmp_path}/data/media/asset/x/video')",
        "url": "https://example.com/data/work/t1/clip.mp4",
        "count": 3,
    }
    shown = ctx.public(facts)
    assert shown["ffmpeg"]["command"] == [
        "ffmpeg-linux64",
        "-i",
        "source",
        "hls/360p0/index.m3u8",
    ]
    assert shown["stderr"] == "source: Invalid data found when processing input\nin ."
    assert shown["repr"] == "FileNotFoundError(2, 'No such file', 'media/asset/x/video')"
    assert shown["count"] == 3 and shown["ffmpeg"]["version"] == "ffmpeg version 7.1"
    assert str(tmp_path) not in repr(shown)
    assert facts["stderr"].startswith(str(work))  # the facts themselves are left as they were


def test_a_relative_work_folder_is_taken_out_too() -> None:
    ctx = _context(Path("data"))
    message = "could not open data/work/t1/source or " + str(Path.cwd() / "data/work/t1/x.ts")
    assert ctx.public(message) == "could not open source or x.ts"
    # A URL that happens to hold "data/" is not mistaken for the data folder.
    assert ctx.public("https://example.com/data/v.mp4") == "https://example.com/data/v.mp4"
