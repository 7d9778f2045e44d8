"""Per-client request rate limits (Gcore answers 429 "Too many requests, try later").

One implementation for every deployment: the ``limits`` package's moving window, counted in Redis when
Redis is the broker (so several API servers share one count), else in a SQLite file in the data
directory that this machine's API processes share (:mod:`.rate_limit_sqlite`).
A client may send ``burst`` requests at once and ``rate`` per second on average: at most ``burst`` in
any window of ``burst / rate`` seconds (rounded to whole seconds, ``limits``' finest unit).
"""

from __future__ import annotations

import logging
import time
from typing import Protocol, cast

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from vodscribe.api.rate_limit_sqlite import SQLiteWindowStorage
from vodscribe.config import Settings

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    def hit(self, client_id: int) -> float:
        """Count one request; 0 if allowed, else the seconds to wait before retrying."""


class Unlimited:
    def hit(self, client_id: int) -> float:
        return 0.0


def window_for(rate: float, burst: int) -> RateLimitItem:
    """``burst`` requests per ``burst / rate`` seconds (at least one second)."""
    amount = max(1, burst)
    seconds = max(1, round(amount / rate))
    return RateLimitItemPerSecond(amount, seconds)


class MovingWindow:
    """The moving-window limit over ``storage`` (Redis shared by all API servers, or this machine's file)."""

    def __init__(self, storage: Storage, item: RateLimitItem) -> None:
        self.item = item
        self.limiter = MovingWindowRateLimiter(storage)

    def hit(self, client_id: int) -> float:
        key = str(client_id)
        try:
            if self.limiter.hit(self.item, "vodscribe", key):
                return 0.0
            reset_at, _ = self.limiter.get_window_stats(self.item, "vodscribe", key)
        except Exception:  # the shared counter is down: do not take the API down with it
            log.warning("rate limit storage unavailable; request allowed", exc_info=True)
            return 0.0
        return max(0.001, reset_at - time.time())


def make_limiter(settings: Settings) -> RateLimiter:
    if settings.rate_limit_per_s <= 0:
        return Unlimited()
    item = window_for(settings.rate_limit_per_s, settings.rate_limit_burst)
    if settings.redis_broker:  # shared by all API processes and servers
        return MovingWindow(
            cast(Storage, storage_from_string(settings.celery_broker_url, socket_timeout=1.0)), item
        )
    return MovingWindow(SQLiteWindowStorage(settings.data_dir / "rate-limits.sqlite"), item)
