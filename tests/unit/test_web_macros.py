"""The dashboard's shared template pieces: a phase badge says its word, a progress bar its
percentage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mediatasks import tasks
from mediatasks.web import render


def _macro(call: str) -> str:
    template = render.TEMPLATES.env.from_string(
        '{% import "_macros.html" as ui %}' + "{{ " + call + " }}"
    )
    return re.sub(r"\s+", " ", template.render(phase=tasks.Phase.RUNNING)).strip()


@pytest.mark.parametrize("phase", list(tasks.Phase))
def test_a_phase_badge_carries_its_word_and_its_colour(phase: tasks.Phase) -> None:
    template = render.TEMPLATES.env.from_string(
        '{% import "_macros.html" as ui %}{{ ui.phase_badge(phase) }}'
    )
    for given in (phase, phase.value):
        html = template.render(phase=given).strip()
        assert html == f'<span class="badge phase-{phase.value}">{phase.value}</span>'


def test_the_stylesheet_colours_every_phase() -> None:
    text = (Path(render.__file__).parent / "static" / "dashboard.css").read_text()
    for phase in tasks.Phase:
        assert f".phase-{phase.value} {{" in text


def test_a_progress_bar_shows_its_percentage_in_words() -> None:
    half = _macro("ui.progress_bar(0.505)")
    assert '<progress max="100" value="50" aria-label="Progress">50 %</progress>' in half
    assert '<span class="progress-text">50 %</span>' in half
    assert 'value="100"' in _macro("ui.progress_bar(1.7)")  # never past the end
    assert 'value="0"' in _macro("ui.progress_bar(0)")
    assert 'value="0"' in _macro("ui.progress_bar(-0.5)")
    unknown = _macro("ui.progress_bar(None)")
    assert "<progress" not in unknown and "no progress yet" in unknown
    assert 'aria-label="Upload"' in _macro('ui.progress_bar(0.2, "Upload")')
