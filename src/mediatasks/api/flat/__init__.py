"""Flat's API (``/v2``): scores in, ``audio-export`` tasks out, for the ``flat-api`` client.

``routes`` is the HTTP application, ``wire`` the JSON shapes, ``schemas`` the request bodies and
``links`` the expiring download links of task results.
"""

from __future__ import annotations

__all__: list[str] = []
