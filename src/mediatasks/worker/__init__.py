"""Workers: the claim -> run -> report loop and the handler of each task type."""

from __future__ import annotations
