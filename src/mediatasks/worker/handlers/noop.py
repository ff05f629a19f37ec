"""``noop``: does nothing, for tests and the queue benchmark.

Its params may ask it to ``sleep_s`` (reporting progress as it goes), to ``fail`` with a message
(``unretriable`` to fail at once), or to fail only its first ``fail_attempts`` attempts.  No API
creates it.
"""

from __future__ import annotations

import asyncio

from mediatasks import errors
from mediatasks.worker import handler, outcome

__all__ = ["NoopHandler"]


class NoopHandler:
    """Completes at once, or after ``sleep_s``, or fails as asked."""

    async def run(self, ctx: handler.Context) -> outcome.Complete:
        params = ctx.task.params
        sleep_s = float(params.get("sleep_s", 0))
        steps = 10
        for step in range(steps if sleep_s > 0 else 0):
            await asyncio.sleep(sleep_s / steps)
            await ctx.report_progress((step + 1) / steps)
        failure = params.get("fail")
        if ctx.task.attempt <= int(params.get("fail_attempts", 0)):
            failure = failure or f"attempt {ctx.task.attempt} failed as asked"
        if failure:
            if params.get("unretriable"):
                raise errors.Unretriable(str(failure))
            raise errors.TaskFailure(str(failure))
        return outcome.Complete(output={"noop": {"attempt": ctx.task.attempt}})
