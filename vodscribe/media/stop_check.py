"""Rate-limited polling of a stage's ``should_stop`` callback, between chunks and frames."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from vodscribe.errors import Cancelled


class StopCheck:
    """Polls a ``should_stop`` callback at most every ``interval_s`` seconds (the first call always polls).

    Stages call :meth:`check` once per chunk or frame, which can be thousands of times a second;
    the callback may hit the database, so it is rate-limited here rather than by every caller.
    """

    def __init__(
        self,
        should_stop: Callable[[], bool] | None,
        error: type[Cancelled] = Cancelled,
        interval_s: float = 0.25,
    ) -> None:
        self._should_stop = should_stop
        self._error = error
        self._interval_s = interval_s
        self._last = -math.inf

    def check(self) -> None:
        """Raise ``error`` if the callback says so; a no-op between polls."""
        if self._should_stop is None:
            return
        now = time.monotonic()
        if now - self._last < self._interval_s:
            return
        self._last = now
        if self._should_stop():
            raise self._error("Cancelled.")
