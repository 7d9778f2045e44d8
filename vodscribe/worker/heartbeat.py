"""A job's sign of life: a daemon thread that calls ``tick()`` at an interval while a job runs."""

from __future__ import annotations

import logging
import threading
from typing import Self

log = logging.getLogger(__name__)


class Heartbeat:
    """Use as a context manager around a job. ``tick()`` returns False once the job is no longer ours
    (cancelled, deleted, handed to another worker); ``stopped()`` then turns true, for the job's stages
    to poll cheaply. A failing tick (database briefly locked) is logged and retried next time."""

    def __init__(self, name: str, interval: float) -> None:
        self.interval = interval
        self._lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)
        self.finish()

    def stopped(self) -> bool:
        return self._lost.is_set()

    def tick(self) -> bool:
        raise NotImplementedError

    def finish(self) -> None:
        """Called once after the loop has ended."""

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            try:
                alive = self.tick()
            except Exception:
                log.warning("%s: heartbeat failed", self._thread.name, exc_info=True)
                continue
            if not alive:
                self._lost.set()
