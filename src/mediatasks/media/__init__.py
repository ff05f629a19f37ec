"""Media processing: FFmpeg processes, probing, rendition ladders and HLS packaging.

The modules, one concept each:

* :mod:`mediatasks.media.ffmpeg`: find and run the FFmpeg binary, report progress, cancel it;
* :mod:`mediatasks.media.probe`: read a file's container and tracks into a :class:`VideoSpec`;
* :mod:`mediatasks.media.ladder`: transcode profiles and Livepeer's default rendition ladder;
* :mod:`mediatasks.media.hls`: the one-process FFmpeg command that writes an HLS ladder, and
  the master playlist in Livepeer's shape;
* :mod:`mediatasks.media.preview`: keyframe thumbnails and a storyboard from that same decode.

Import the modules rather than their names (``from mediatasks.media import ladder``).
"""

from __future__ import annotations

__all__: list[str] = []
