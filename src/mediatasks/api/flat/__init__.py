"""Flat's API (``/v2``): scores in, ``audio-export`` tasks out, for the ``flat-api`` client.

``routes`` is the HTTP application and its error answers; ``scores`` and ``tasks`` the handlers;
``auth`` the caller's key; ``body`` the request bodies' reading, with ``schemas`` their models;
``wire`` the JSON shapes and ``links`` the expiring download links of task results.  The use
cases themselves are in ``mediatasks.scores.service``.
"""

from __future__ import annotations

__all__: list[str] = []
