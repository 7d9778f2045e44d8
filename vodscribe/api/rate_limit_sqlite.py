"""A ``limits`` storage for the moving window in one SQLite file, shared by the API processes of
one machine (the embedded default, which has no Redis).

Each request is one short transaction: drop the client's entries older than the window, count the
rest, add one. An exclusive ``flock`` on a side file serialises the transactions of every process
(and a thread lock those of one process), so SQLite never meets a busy database and never sleeps in
its busy handler; the lock is held for tens of microseconds. The entries outlive a restart of the
server, but are not synced to disk (``synchronous=OFF``): after the machine itself crashes, a
window may have lost its latest entries (it is emptier, never fuller).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from limits.storage import MovingWindowSupport, Storage

#: Every this many entries, the expired entries of all clients go (a client who stopped sending
#: keeps at most its limit's rows until then).
SWEEP_EVERY = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS ix_entries_key_at ON entries (key, at);
"""


class SQLiteWindowStorage(Storage, MovingWindowSupport):
    """Moving-window entries in ``path`` (created if missing), for ``MovingWindowRateLimiter``."""

    STORAGE_SCHEME = None  # built directly, not from a URI

    def __init__(self, path: Path) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._thread_lock = threading.Lock()
        self._lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._entries = 0
        self._longest = 0  # the longest window seen, for the sweep
        with self._locked():
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.executescript(_SCHEMA)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (sqlite3.Error, OSError)

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._thread_lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield self._db
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        with self._locked() as db:
            now = time.time()
            db.execute("BEGIN")
            try:
                db.execute("DELETE FROM entries WHERE key = ? AND at < ?", (key, now - expiry))
                (held,) = db.execute("SELECT count(*) FROM entries WHERE key = ?", (key,)).fetchone()
                granted = int(held) + amount <= limit
                if granted:
                    db.executemany("INSERT INTO entries (key, at) VALUES (?, ?)", [(key, now)] * amount)
                    self._entries += amount
                    self._longest = max(self._longest, expiry)
                    if self._entries >= SWEEP_EVERY:
                        self._entries = 0
                        db.execute("DELETE FROM entries WHERE at < ?", (now - self._longest,))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return granted

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """The window's start (its oldest entry) and how many entries it holds."""
        with self._locked() as db:
            now = time.time()
            oldest, held = db.execute(
                "SELECT min(at), count(*) FROM entries WHERE key = ? AND at >= ?", (key, now - expiry)
            ).fetchone()
        return (oldest if held else now), held

    # The fixed-window half of the interface, which the moving window does not use.
    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError("only the moving window is stored here")

    def get(self, key: str) -> int:
        raise NotImplementedError("only the moving window is stored here")

    def get_expiry(self, key: str) -> float:
        raise NotImplementedError("only the moving window is stored here")

    def check(self) -> bool:
        with self._locked() as db:
            db.execute("SELECT 1").fetchone()
        return True

    def reset(self) -> int | None:
        with self._locked() as db:
            return db.execute("DELETE FROM entries").rowcount

    def clear(self, key: str) -> None:
        with self._locked() as db:
            db.execute("DELETE FROM entries WHERE key = ?", (key,))
