"""A score's ``thumbnail.png``: the first page as verovio engraves it, rasterized by resvg.

Verovio writes SVG whose music glyphs are paths (no font needed); resvg (the ``resvg-py`` wheel,
a self-contained Rust renderer) turns it into a PNG on a white background.  The page is cut to
the height of its music (``adjustPageHeight``), at :data:`SCALE_PERCENT` of verovio's size.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

import resvg_py
import verovio

from mediatasks import errors
from mediatasks.scores import render

__all__ = ["MEDIA_TYPE", "SCALE_PERCENT", "render_png"]

MEDIA_TYPE: Final = "image/png"
#: Verovio's zoom: 40 % makes an A4-wide page 840 pixels wide.
SCALE_PERCENT: Final = 40


def render_png(xml: bytes) -> bytes:
    """The first page of a MusicXML score as PNG; blocking, so call it in a thread.

    Raises ``errors.InvalidInput`` when verovio cannot read the score.
    """
    try:
        text = xml.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.InvalidInput("Unable to render the score: it is not UTF-8 MusicXML") from exc
    with render.VEROVIO_LOCK:
        # As in render.musicxml_to_midi: the resource path is per thread.
        verovio.setDefaultResourcePath(str(resources.files("verovio") / "data"))
        verovio.enableLog(verovio.LOG_OFF)
        toolkit = verovio.toolkit()
        toolkit.setOptions({"adjustPageHeight": True, "footer": "none", "scale": SCALE_PERCENT})
        if not toolkit.loadData(text) or toolkit.getPageCount() < 1:
            raise errors.InvalidInput("Unable to render the score: verovio could not read it")
        svg = toolkit.renderToSVG(1)
    try:
        return bytes(resvg_py.svg_to_bytes(svg_string=svg, background="white"))
    except ValueError as exc:
        raise errors.InvalidInput("Unable to render the score's thumbnail") from exc
