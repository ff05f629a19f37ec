"""Generated clips shared by the media integration tests (see ``tests/mediagen.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import mediagen


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for clips generated once per session."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip(media_dir: Path) -> Path:
    """2 s, 640x360, 30 fps, H.264 with an AAC tone."""
    return mediagen.make_video(media_dir / "clip.mp4")


@pytest.fixture(scope="session")
def rotated_clip(media_dir: Path) -> Path:
    """1 s, stored 640x360 with its left half white, displayed rotated 90° counter-clockwise.

    Upright, it is 360x640 with the white half at the *bottom*.
    """
    return mediagen.make_video(
        media_dir / "rotated.mp4",
        seconds=1.0,
        audio=False,
        pattern="left-white",
        display_rotation_deg=90,
    )
