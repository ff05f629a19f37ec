"""Observability in one place: the Prometheus metrics, and one log line per task transition.

The worker, the rescuer, the webhook sender and the service call one function of this module at
each transition point (``task_claimed``, ``task_completed``, ``task_failed``, ``task_retried``,
``task_released``, ``task_stopped``, ``task_rescued``, ``task_cancelled``, ``webhook_attempt``);
each function writes the log line and moves the metrics, so that the two never disagree and a
call site is one line.  ``HttpMetrics`` (ASGI middleware) counts HTTP requests, and
``QueueDepth`` reads how many tasks wait and run from the task store.

The metrics are process-wide, like loggers: they are created when this module is imported, in a
registry of their own (``REGISTRY``), and every process serves its own at ``/metrics`` (a
worker with ``--metrics-port``).  Prometheus adds the processes up.  Names follow Prometheus'
conventions: counters end in ``_total``, durations are ``_seconds``, label values come from
short fixed lists (task types, outcomes, route templates, never a raw path or an id).

Logs: ``configure_logging`` sets up the root logger once per process, as text or, with
``MEDIATASKS_LOG_FORMAT=json``, one JSON object per line in which a transition's fields
(``event``, ``task_id``, ``task_type``, ``attempt``, ``duration_s``, ``worker``...) are keys.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    exposition,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pythonjsonlogger import json as jsonlogger

from mediatasks import __version__, tasks, taskstore

if TYPE_CHECKING:  # a worker process runs no FastAPI application: it does not import FastAPI
    from fastapi.telemetry import TelemetryConfig

__all__ = [
    "CONTENT_TYPE",
    "NO_OPENTELEMETRY",
    "REGISTRY",
    "HttpMetrics",
    "QueueDepth",
    "configure_logging",
    "render",
    "task_cancelled",
    "task_claimed",
    "task_completed",
    "task_failed",
    "task_released",
    "task_rescued",
    "task_retried",
    "task_stopped",
    "webhook_attempt",
]

log = logging.getLogger("mediatasks.task")
_webhook_log = logging.getLogger("mediatasks.webhook")

#: FastAPI's own OpenTelemetry, off in each application (``FastAPI(telemetry=...)``): the
#: service's telemetry is this module's, and FastAPI would otherwise ask the global
#: OpenTelemetry providers on every request whether one has been set up.
NO_OPENTELEMETRY: Final[TelemetryConfig] = {"tracing": False, "metrics": False, "logs": False}

#: The ``Content-Type`` of a metrics page.
CONTENT_TYPE: Final = exposition.CONTENT_TYPE_LATEST

# No ``*_created`` series: they double the page for a time that process_start_time_seconds
# already gives.
disable_created_metrics()  # type: ignore[no-untyped-call]
#: Every metric of this process, and the process' own (CPU, memory, open files).
REGISTRY: Final = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

#: Media tasks last from a fraction of a second (a no-op, an export) to hours (a long ladder).
_TASK_BUCKETS: Final = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400)
#: FFmpeg's speed: 1 is real time; a small ladder on two cores runs at 2 to 20.
_SPEED_BUCKETS: Final = (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)

_BUILD = Info("mediatasks_build", "The version of mediatasks this process runs.", registry=REGISTRY)
_BUILD.info({"version": __version__})

_CLAIMS = Counter(
    "mediatasks_task_claims",
    "Attempts started: tasks claimed by a worker of this process.",
    ["type"],
    registry=REGISTRY,
)
_FINISHED = Counter(
    "mediatasks_tasks_finished",
    "Tasks that reached a final phase in this process, by how they ended "
    "(completed, failed, cancelled).",
    ["type", "outcome"],
    registry=REGISTRY,
)
_TASK_SECONDS = Histogram(
    "mediatasks_task_duration_seconds",
    "From a task's creation to its completion or failure, waiting and retries included.",
    ["type", "outcome"],
    buckets=_TASK_BUCKETS,
    registry=REGISTRY,
)
_ATTEMPT_SECONDS = Histogram(
    "mediatasks_task_attempt_duration_seconds",
    "One attempt, from its claim to its outcome (completed, failed, retried, released, "
    "cancelled, lost).",
    ["type", "outcome"],
    buckets=_TASK_BUCKETS,
    registry=REGISTRY,
)
_RETRIES = Counter(
    "mediatasks_task_retries",
    "Attempts that failed and were scheduled again (automatic retries).",
    ["type"],
    registry=REGISTRY,
)
_RESCUES = Counter(
    "mediatasks_task_rescues",
    "Expired leases taken back by this process' rescuer, by what became of the task "
    "(retried, failed).",
    ["type", "outcome"],
    registry=REGISTRY,
)
_FFMPEG_SPEED = Histogram(
    "mediatasks_ffmpeg_speed_ratio",
    "Media seconds encoded per wall-clock second of FFmpeg, one observation per encode.",
    ["type"],
    buckets=_SPEED_BUCKETS,
    registry=REGISTRY,
)
_WEBHOOK_DELIVERIES = Counter(
    "mediatasks_webhook_deliveries",
    "Webhook delivery attempts, by outcome (delivered, retrying, failed: given up).",
    ["outcome"],
    registry=REGISTRY,
)
_WEBHOOK_SECONDS = Histogram(
    "mediatasks_webhook_delivery_duration_seconds",
    "How long one webhook delivery attempt took, until the answer or the error.",
    ["outcome"],
    registry=REGISTRY,
)
_HTTP_REQUESTS = Counter(
    "mediatasks_http_requests",
    "HTTP requests answered, by dialect (livepeer, flat, media, service), route template, "
    "method and status.",
    ["dialect", "route", "method", "status"],
    registry=REGISTRY,
)
_HTTP_SECONDS = Histogram(
    "mediatasks_http_request_duration_seconds",
    "Time until an HTTP answer's status and headers were sent (a stream's body is not counted).",
    ["dialect", "route", "method"],
    registry=REGISTRY,
)

for _type in tasks.TaskType:
    _CLAIMS.labels(_type)
    _RETRIES.labels(_type)
    for _outcome in ("completed", "failed", "cancelled"):
        _FINISHED.labels(_type, _outcome)
for _outcome in ("delivered", "retrying", "failed"):
    _WEBHOOK_DELIVERIES.labels(_outcome)


# -- logging -------------------------------------------------------------------------------------
_TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(log_format: Literal["text", "json"] = "text", level: str = "INFO") -> None:
    """Send every log record (uvicorn's too) to stderr, as text or one JSON object per line."""
    handler = _Handler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(
            jsonlogger.JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    _lines.configure(sys.stderr, log_format)
    # httpx logs every request's whole URL at INFO: a source or webhook URL may carry a token.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))


#: The request lines (``HttpMetrics``): its level decides whether they are written.
_access_log = logging.getLogger("mediatasks.access")
#: Frequent lines are written at most this late, and in one write per batch.
_FLUSH_S: Final = 0.2
_BATCH: Final = 256


class _Lines:
    """Writes the frequent lines (one per request, one per task transition) once
    ``configure_logging`` has run, in the format of every other line, but without a ``logging``
    record: a record, its formatting and its own write cost about 8 µs of CPU, which a cheap
    request (a task read) and a queue of no-op tasks notice; a line here costs well under one.
    The lines are written in batches: one write for up to ``_BATCH`` lines, at most ``_FLUSH_S``
    after the first (at once outside an event loop, when the process exits, and before any
    ``logging`` record, so that the stream keeps the order in which lines were made).  Before
    ``configure_logging`` (an application embedded elsewhere, tests), they go through their
    loggers."""

    def __init__(self) -> None:
        self._stream: Any = None
        self._json = False
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._stamp = ""

    def configure(self, stream: Any, log_format: str) -> None:
        self.flush()
        if self._stream is None:
            atexit.register(self.flush)
        self._stream = stream
        self._json = log_format == "json"

    def write(
        self, logger: logging.Logger, level: int, message: str, fields: dict[str, Any]
    ) -> None:
        """One line of ``logger`` at ``level`` (the caller checked that it is enabled)."""
        if self._stream is None:
            logger.log(level, message, extra=fields)
            return
        now = time.time()
        second = int(now)
        if second != self._second:  # as logging's default asctime, computed once a second
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        stamp = f"{self._stamp},{int((now - second) * 1000):03d}"
        level_name = logging.getLevelName(level)
        if self._json:
            entry = {"time": stamp, "level": level_name, "logger": logger.name}
            line = orjson.dumps({**entry, "message": message, **fields}, default=str).decode()
        else:
            line = f"{stamp} {level_name} {logger.name} {message}"
        self._lines.append(line)
        if len(self._lines) >= _BATCH:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(_FLUSH_S, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lines, self._lines = self._lines, []
        if lines and self._stream is not None:
            with contextlib.suppress(OSError, ValueError):  # a closed stream at exit
                self._stream.write("\n".join(lines) + "\n")
                self._stream.flush()


_lines = _Lines()


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root logger's handler: writes the waiting frequent lines before its record."""

    def emit(self, record: logging.LogRecord) -> None:
        _lines.flush()
        super().emit(record)


def _transition(
    level: int,
    event: str,
    task: tasks.Task,
    *,
    worker: str | None = None,
    duration_s: float | None = None,
    **fields: Any,
) -> None:
    """One line: ``task <event> <id> type=... attempt=... [duration=...] [worker=...] ...``."""
    if not log.isEnabledFor(level):
        return
    extra: dict[str, Any] = {
        "event": f"task.{event}",
        "task_id": task.id,
        "task_type": task.type,
        "attempt": task.attempt,
        "project_id": task.project_id,
    }
    text = [f"task {event} {task.id} type={task.type} attempt={task.attempt}"]
    if duration_s is not None:
        extra["duration_s"] = round(duration_s, 3)
        text.append(f"duration={duration_s:.3f}s")
    if worker is not None:
        extra["worker"] = worker
        text.append(f"worker={worker}")
    for name, value in fields.items():
        if value is None:
            continue
        extra[name] = value
        text.append(f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}")
    _lines.write(log, level, " ".join(text), extra)


def _since(moment: datetime) -> float:
    return max(0.0, (datetime.now(UTC) - moment).total_seconds())


# -- the transitions -----------------------------------------------------------------------------
def task_claimed(task: tasks.Task, worker: str) -> None:
    """A worker claimed ``task`` (``waiting -> running``); ``task`` is as the claim left it."""
    _CLAIMS.labels(task.type).inc()
    waited_s = round(_since(task.run_at), 3)
    _transition(logging.INFO, "claimed", task, worker=worker, waited_s=waited_s)


def task_completed(
    task: tasks.Task, worker: str, attempt_s: float, facts: Mapping[str, Any]
) -> None:
    """``running -> completed``.  ``facts`` are the attempt's: FFmpeg's speed is read there."""
    total_s = _since(task.created_at)
    _FINISHED.labels(task.type, "completed").inc()
    _TASK_SECONDS.labels(task.type, "completed").observe(total_s)
    _ATTEMPT_SECONDS.labels(task.type, "completed").observe(attempt_s)
    speed = _ffmpeg_speed(facts)
    if speed is not None:
        _FFMPEG_SPEED.labels(task.type).observe(speed)
    _transition(
        logging.INFO,
        "completed",
        task,
        worker=worker,
        duration_s=attempt_s,
        total_s=round(total_s, 3),
        ffmpeg_speed=None if speed is None else round(speed, 2),
    )


def task_failed(task: tasks.Task, worker: str, attempt_s: float, error_message: str) -> None:
    """``running -> failed``: an unretriable error, or the last retry spent."""
    _FINISHED.labels(task.type, "failed").inc()
    _TASK_SECONDS.labels(task.type, "failed").observe(_since(task.created_at))
    _ATTEMPT_SECONDS.labels(task.type, "failed").observe(attempt_s)
    _transition(
        logging.WARNING, "failed", task, worker=worker, duration_s=attempt_s, error=error_message
    )


def task_retried(
    task: tasks.Task, worker: str, attempt_s: float, delay_s: float, error_message: str
) -> None:
    """``running -> waiting`` with a retry counted: the attempt failed, another will follow."""
    _RETRIES.labels(task.type).inc()
    _ATTEMPT_SECONDS.labels(task.type, "retried").observe(attempt_s)
    _transition(
        logging.WARNING,
        "retried",
        task,
        worker=worker,
        duration_s=attempt_s,
        retries=task.retries,
        delay_s=delay_s,
        error=error_message,
    )


def task_released(task: tasks.Task, worker: str, attempt_s: float) -> None:
    """``running -> waiting`` without a retry counted: the worker shut down before it finished."""
    _ATTEMPT_SECONDS.labels(task.type, "released").observe(attempt_s)
    _transition(logging.INFO, "released", task, worker=worker, duration_s=attempt_s)


def task_stopped(task: tasks.Task, worker: str, attempt_s: float, phase: tasks.Phase) -> None:
    """A running attempt was stopped because the task left ``running`` under it: cancelled by
    a user (``phase`` is ``cancelled``), or taken back by a rescuer (it is then ``lost``)."""
    outcome = "cancelled" if phase is tasks.Phase.CANCELLED else "lost"
    _ATTEMPT_SECONDS.labels(task.type, outcome).observe(attempt_s)
    _transition(
        logging.INFO if outcome == "cancelled" else logging.WARNING,
        "stopped",
        task,
        worker=worker,
        duration_s=attempt_s,
        reason=outcome,
        phase=str(phase),
    )


def task_rescued(task: tasks.Task) -> None:
    """A rescuer took back ``task``'s expired lease; ``task`` is as the rescue left it."""
    outcome = "failed" if task.phase is tasks.Phase.FAILED else "retried"
    _RESCUES.labels(task.type, outcome).inc()
    if outcome == "failed":
        _FINISHED.labels(task.type, "failed").inc()
        _TASK_SECONDS.labels(task.type, "failed").observe(_since(task.created_at))
    _transition(
        logging.WARNING, "rescued", task, worker=task.worker_id, outcome=outcome, phase=task.phase
    )


def task_cancelled(task: tasks.Task) -> None:
    """A user cancelled ``task`` (``pending|waiting|running -> cancelled``)."""
    _FINISHED.labels(task.type, "cancelled").inc()
    _transition(logging.INFO, "cancelled", task)


def task_requeued(task: tasks.Task) -> None:
    """A user retried ``task`` (``failed|cancelled -> waiting``); ``task`` is as it is now."""
    _transition(logging.INFO, "requeued", task, phase=str(task.phase))


def webhook_attempt(
    outcome: Literal["delivered", "retrying", "failed"],
    duration_s: float,
    *,
    webhook_id: str,
    event_id: str,
    attempt: int,
    detail: str | None = None,
    retry_at: datetime | None = None,
) -> None:
    """One delivery attempt of a webhook event ended; ``detail`` says why it failed."""
    _WEBHOOK_DELIVERIES.labels(outcome).inc()
    _WEBHOOK_SECONDS.labels(outcome).observe(duration_s)
    extra: dict[str, Any] = {
        "event": f"webhook.{outcome}",
        "webhook_id": webhook_id,
        "event_id": event_id,
        "attempt": attempt,
        "duration_s": round(duration_s, 3),
    }
    text = f"webhook {outcome} {webhook_id} event={event_id} attempt={attempt}"
    text += f" duration={duration_s:.3f}s"
    if detail is not None:
        extra["detail"] = detail
        text += f" detail={detail!r}"
    if retry_at is not None:
        extra["retry_at"] = retry_at.isoformat(timespec="seconds")
        text += f" retry_at={extra['retry_at']}"
    _webhook_log.log(logging.INFO if outcome == "delivered" else logging.WARNING, text, extra=extra)


def _ffmpeg_speed(facts: Mapping[str, Any]) -> float | None:
    """Media seconds per wall second of the attempt's encode, from its ``ffmpeg`` facts."""
    ffmpeg = facts.get("ffmpeg")
    if not isinstance(ffmpeg, Mapping):
        return None
    media_s, elapsed_s = ffmpeg.get("mediaS"), ffmpeg.get("elapsedS")
    if not isinstance(media_s, int | float) or not isinstance(elapsed_s, int | float):
        return None
    if media_s <= 0 or elapsed_s <= 0:
        return None
    return float(media_s) / float(elapsed_s)


# -- queue depth -----------------------------------------------------------------------------------
class QueueDepth(Collector):
    """``mediatasks_queue_depth{type, phase}``: the store's unfinished tasks, read at most every
    ``max_age_s`` (one grouped count: cheap, but not worth running on every scrape).

    ``refresh()`` reads the store (call it before rendering); ``collect()`` reports the last
    reading, or nothing when the store could not be read within ``timeout_s``: a gap in the
    graph rather than a stale number.
    """

    def __init__(
        self, store: taskstore.TaskStore, *, max_age_s: float = 5.0, timeout_s: float = 1.0
    ) -> None:
        self._store = store
        self._max_age_s = max_age_s
        self._timeout_s = timeout_s
        self._counts: Mapping[tuple[str, tasks.Phase], int] | None = None
        self._read_at = -float("inf")
        self._reading: asyncio.Task[Mapping[tuple[str, tasks.Phase], int]] | None = None

    async def refresh(self) -> None:
        """Read the store again if the last reading is older than ``max_age_s``."""
        if time.monotonic() - self._read_at < self._max_age_s:
            return
        if self._reading is None or self._reading.done():
            # One reading at a time, shared by concurrent scrapes: a store that hangs holds one
            # connection, not one per scrape.
            self._reading = asyncio.ensure_future(self._store.queue_depth())
        try:
            async with asyncio.timeout(self._timeout_s):
                counts = await asyncio.shield(self._reading)
        except Exception as exc:  # a metrics page answers whatever the store does
            log.warning("queue depth unavailable: %s", exc or "no answer in time")
            self._counts = None
            return
        self._counts, self._read_at = counts, time.monotonic()

    def collect(self) -> Iterable[Metric]:
        if self._counts is None:
            return
        family = GaugeMetricFamily(
            "mediatasks_queue_depth",
            "Unfinished tasks in the task store, by type and phase (pending, waiting, running).",
            labels=["type", "phase"],
        )
        for (task_type, phase), count in sorted(self._counts.items()):
            family.add_metric([task_type, str(phase)], count)
        yield family


class _Page(Collector):
    def __init__(self, extra: Iterable[Collector]) -> None:
        self._extra = list(extra)

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()
        for collector in self._extra:
            yield from collector.collect()


async def render(depth: QueueDepth | None = None) -> bytes:
    """This process' metrics page in Prometheus' text format (queue depth too, when given)."""
    if depth is None:
        return exposition.generate_latest(REGISTRY)
    await depth.refresh()
    return exposition.generate_latest(_Page([depth]))


# -- HTTP ------------------------------------------------------------------------------------------
_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_DIALECTS: Final = (("/api", "livepeer"), ("/v2", "flat"), ("/media", "media"))


def _dialect(path: str) -> str:
    for prefix, name in _DIALECTS:
        if path == prefix or path.startswith(prefix + "/"):
            return name
    return "service"


#: The series of each (dialect, route, method, status) seen: ``labels()`` checks and locks on
#: every call, a request needs only the same two series again.  As bounded as the labels are.
_http_series: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}


class HttpMetrics:
    """ASGI middleware: ``mediatasks_http_requests_total`` and its latency histogram.

    The route label is the matched route's template with its mount (``/api/task/{task_id}``),
    read from the scope once the app has routed the request; a request that matched no route
    counts as ``unmatched``, so a scan of random paths adds no series.
    """

    def __init__(self, app: Callable[[_Scope, _Receive, _Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        answered_s: float | None = None

        async def send_and_watch(message: _Message) -> None:
            nonlocal status, answered_s
            if message["type"] == "http.response.start":
                status = int(message["status"])
                answered_s = time.perf_counter() - started
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None)
            label = f"{scope.get('root_path', '')}{template}" if template else "unmatched"
            dialect = _dialect(str(scope.get("path", "")))
            method = str(scope.get("method", ""))
            elapsed_s = answered_s if answered_s is not None else time.perf_counter() - started
            labels = (dialect, label, method, status)
            series = _http_series.get(labels)
            if series is None:
                series = _http_series[labels] = (
                    _HTTP_REQUESTS.labels(dialect, label, method, str(status)),
                    _HTTP_SECONDS.labels(dialect, label, method),
                )
            series[0].inc()
            series[1].observe(elapsed_s)
            if _access_log.isEnabledFor(logging.INFO):
                _log_request(scope, method, status, elapsed_s)


def _log_request(scope: _Scope, method: str, status: int, elapsed_s: float) -> None:
    """One line a request: ``<client> "<method> <path>" <status> <ms>ms``.  The path is logged
    without its query string, where playback tokens and upload tokens travel."""
    client = scope.get("client")
    where = f"{client[0]}:{client[1]}" if client else "-"
    path = str(scope.get("path", ""))
    if not path.isprintable():  # a newline in a path must not start a line of its own
        path = path.encode("unicode_escape").decode("ascii")
    duration_ms = elapsed_s * 1000
    _lines.write(
        _access_log,
        logging.INFO,
        f'{where} "{method} {path}" {status} {duration_ms:.1f}ms',
        {"method": method, "path": path, "status": status, "duration_s": round(elapsed_s, 6)},
    )
