"""The one way tests wait for something that happens in another process or thread."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T | None], *, timeout: float = 60.0, interval: float = 0.2, what: str = ""
) -> T:
    """Call ``check`` until it returns something truthy and return that; fail after ``timeout``
    seconds with the last value seen (or the last exception ``check`` raised), naming ``what``.

    ``timeout`` is a bound on waiting, never an assertion about speed: pick one that a slow machine
    meets with room to spare."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
        except AssertionError as exc:  # a check may assert; keep trying until the deadline
            value, last = None, exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what or 'condition'} not reached in {timeout:g} s; last: {last!r}")
        time.sleep(interval)
