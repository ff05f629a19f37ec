"""``python -m mediatasks`` runs the command line."""

from __future__ import annotations

from mediatasks import cli

cli.main()
