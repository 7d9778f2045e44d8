"""Per-client request rate limits (Gcore answers 429 "Too many requests, try later").

In one process a token bucket does; with several API servers the count must be shared, so with a
Redis broker the limiter counts in Redis (a one-second window per client)."""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol

from vodscribe.config import Settings


class RateLimiter(Protocol):
    def hit(self, client_id: int) -> float:
        """Count one request; 0 if allowed, else the seconds to wait before retrying."""


class Unlimited:
    def hit(self, client_id: int) -> float:
        return 0.0


class TokenBucket:
    """``rate`` requests per second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, client_id: int) -> float:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client_id] = (tokens, now)
            return (1.0 - tokens) / self.rate


class RedisWindow:
    """At most ``limit`` requests per client in each one-second window, counted in Redis."""

    def __init__(self, url: str, limit: int) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=1.0)
        self.limit = limit

    def hit(self, client_id: int) -> float:
        now = time.time()
        key = f"vodscribe:ratelimit:{client_id}:{int(now)}"
        try:
            pipe = self.redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, 2)
            count = int(pipe.execute()[0])
        except Exception:  # Redis down: do not take the API down with it
            return 0.0
        return 0.0 if count <= self.limit else math.ceil(now) - now or 1.0


def make_limiter(settings: Settings) -> RateLimiter:
    if settings.rate_limit_per_s <= 0:
        return Unlimited()
    if settings.celery_broker_url.startswith(("redis://", "rediss://")):
        return RedisWindow(settings.celery_broker_url, max(1, round(settings.rate_limit_burst)))
    return TokenBucket(settings.rate_limit_per_s, settings.rate_limit_burst)
