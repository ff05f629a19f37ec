"""Webhooks: events go through an outbox written with the change that caused them, then a
sender fans them out, signs and delivers them with retries."""

from __future__ import annotations
