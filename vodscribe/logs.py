"""Log lines that say whose work they are, as text or as JSON (``VODSCRIBE_LOG_FORMAT``).

Every line logged while a request, an AI task or a video job is handled carries its ``request_id``,
``task_id`` and ``video_id`` (context variables, set by the API's middleware and by the runners with
:func:`working_on`): in JSON they are fields of each object, so a log store can gather one task's
lines from the API, the queue and every worker that touched it.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
TASK_ID: ContextVar[str | None] = ContextVar("task_id", default=None)
VIDEO_ID: ContextVar[int | None] = ContextVar("video_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The fields of a JSON line, in order (``timestamp`` is ISO 8601 with the zone).
JSON_FIELDS = ("timestamp", "level", "logger", "message", "request_id", "task_id", "video_id")


@contextmanager
def working_on(*, task_id: str | None = None, video_id: int | None = None) -> Iterator[None]:
    """Lines logged inside are about this task and/or video (a value not given is left as it was)."""
    task = TASK_ID.set(task_id) if task_id is not None else None
    video = VIDEO_ID.set(video_id) if video_id is not None else None
    try:
        yield
    finally:
        if video is not None:
            VIDEO_ID.reset(video)
        if task is not None:
            TASK_ID.reset(task)


class WorkContext(logging.Filter):
    """Adds the request, task and video ids of the work under way to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        record.task_id = TASK_ID.get()
        record.video_id = VIDEO_ID.get()
        return True


class _TextWithContext(logging.Formatter):
    """The text format, with ``[task=… video=… request=…]`` after the logger name when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        ids = [
            f"{name}={value}"
            for name, value in (
                ("task", getattr(record, "task_id", None)),
                ("video", getattr(record, "video_id", None)),
                ("request", getattr(record, "request_id", None)),
            )
            if value is not None
        ]
        line = super().format(record)
        if not ids:
            return line
        head, sep, rest = line.partition(": ")
        return f"{head} [{' '.join(ids)}]{sep}{rest}"


def formatter(fmt: Literal["text", "json"]) -> logging.Formatter:
    """The formatter of ``fmt``; times are UTC, whatever the machine's zone."""
    chosen = _formatter(fmt)
    chosen.converter = time.gmtime
    return chosen


def _formatter(fmt: Literal["text", "json"]) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter(
            " ".join(
                f"%({field})s" for field in ("asctime", "levelname", "name", "message", *JSON_FIELDS[4:])
            ),
            rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
            timestamp=False,
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    return _TextWithContext(TEXT_FORMAT)


def setup(level: str | int = "INFO", fmt: Literal["text", "json"] = "text") -> None:
    """One handler on the root logger, to stderr, in ``fmt``, with the work's ids on every line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(WorkContext())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
