"""Livepeer Studio's API under ``/api``."""

from __future__ import annotations
