"""Reading WebVTT files as a player's scrubber does, and checking that their cues leave no gap."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

__all__ = ["Cue", "assert_cover_without_gaps", "parse", "read"]

Cue = tuple[int, int, str]

_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(\S+)\n")


def parse(text: str) -> list[Cue]:
    """``(start_ms, end_ms, text)`` of every cue of a WebVTT document."""
    assert text.startswith("WEBVTT\n\n"), text[:40]
    found = []
    for match in _CUE.finditer(text):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in match.groups()[:8])
        start = ((h1 * 60 + m1) * 60 + s1) * 1000 + ms1
        end = ((h2 * 60 + m2) * 60 + s2) * 1000 + ms2
        found.append((start, end, match.group(9)))
    assert len(found) == text.count(" --> "), "every cue must be well formed"
    return found


def read(path: Path) -> list[Cue]:
    """:func:`parse` of a file."""
    return parse(path.read_text(encoding="utf-8"))


def assert_cover_without_gaps(cues: list[Cue], duration_s: float) -> None:
    """The cues run from 0 to the end (within 50 ms), each starting where the one before ends."""
    assert cues, "no cue"
    assert cues[0][0] == 0
    for (_, end, _), (start, _, _) in itertools.pairwise(cues):
        assert start == end, "cues must follow each other without a gap or an overlap"
    assert all(end > start for start, end, _ in cues)
    assert abs(cues[-1][1] - duration_s * 1000) <= 50, (cues[-1], duration_s)
