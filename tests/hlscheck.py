"""Checking HLS output as a player would: fetch every playlist and segment, then open with PyAV."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import urljoin

import av
import httpx

__all__ = ["Rendition", "mirror", "renditions"]


@dataclasses.dataclass(frozen=True)
class Rendition:
    """One variant of a master playlist, measured."""

    name: str
    width: int
    height: int
    duration_s: float
    segments: int


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _without_query(uri: str) -> str:
    return uri.split("?", 1)[0]


def mirror(master_url: str, dest: Path) -> Path:
    """Download a master playlist, its media playlists and their segments; return the copy.

    URIs may carry a query (a playback token): the player's requests keep it, the local copy
    (files and the URIs of its playlists) drops it.
    """
    with httpx.Client(timeout=30) as client:

        def fetch(url: str, relative: str) -> str:
            response = client.get(url)
            response.raise_for_status()
            target = dest / _without_query(relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not _without_query(relative).endswith(".m3u8"):
                target.write_bytes(response.content)
                return ""
            local = [
                line if line.startswith("#") else _without_query(line)
                for line in response.text.splitlines()
            ]
            target.write_text("\n".join(local) + "\n")
            return response.text

        master = fetch(master_url, "index.m3u8")
        for variant in (line for line in _lines(master) if not line.startswith("#")):
            playlist = fetch(urljoin(master_url, variant), variant)
            folder = _without_query(variant).rsplit("/", 1)[0] + "/" if "/" in variant else ""
            for segment in (line for line in _lines(playlist) if not line.startswith("#")):
                fetch(urljoin(urljoin(master_url, variant), segment), folder + segment)
    return dest / "index.m3u8"


def renditions(master: Path) -> list[Rendition]:
    """Open every variant of a local master playlist with PyAV and measure it."""
    found = []
    for variant in (line for line in _lines(master.read_text()) if not line.startswith("#")):
        playlist = master.parent / variant
        segments = [line for line in _lines(playlist.read_text()) if not line.startswith("#")]
        with av.open(str(playlist)) as container:
            stream = container.streams.video[0]
            frames = list(container.decode(stream))
            first, last = frames[0], frames[-1]
            assert first.time is not None and last.time is not None
            frame_s = float(1 / stream.average_rate) if stream.average_rate else 0.0
            found.append(
                Rendition(
                    name=variant.split("/")[0],
                    width=first.width,
                    height=first.height,
                    duration_s=last.time - first.time + frame_s,
                    segments=len(segments),
                )
            )
    return found
