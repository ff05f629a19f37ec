"""HTTP only: parse requests, call the service, render a dialect's JSON, map errors to status
codes.  No SQL and no media work here."""

from __future__ import annotations
