"""Whether this API server can do its work now: the database, the broker and the file storage.

Each check is cheap and bounded (a query, a file written, a ping); the answers feed ``/health``,
which a load balancer or orchestrator polls, so a server that cannot store or queue work stops
being sent requests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from vodscribe.atomic import write_atomic
from vodscribe.config import Settings
from vodscribe.db.session import missing_database_file, session_scope
from vodscribe.storage.video_files import media_store

log = logging.getLogger(__name__)


def check_database(settings: Settings) -> None:
    gone = missing_database_file(settings.db_url)
    if gone is not None:
        raise OSError(f"the database file {gone} is missing")
    with session_scope(settings.db_url) as s:
        s.execute(text("SELECT 1"))


def check_broker(settings: Settings) -> None:
    url = settings.celery_broker_url
    if settings.redis_broker:
        import redis

        redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0).ping()
    elif url.startswith("filesystem://"):
        queue = settings.broker_dir / "queue"
        if not queue.is_dir():
            raise OSError(f"the queue folder {queue} is missing")
        write_atomic(Path(queue) / ".health", "ok")


def check_storage(settings: Settings) -> None:
    media_store(settings).check()


CHECKS: dict[str, Callable[[Settings], None]] = {
    "database": check_database,
    "broker": check_broker,
    "storage": check_storage,
}


def health(settings: Settings) -> dict[str, str]:
    """``{"database": "ok", "broker": "unavailable: ...", ...}``."""
    found: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check(settings)
            found[name] = "ok"
        except Exception as exc:
            log.warning("health: %s unavailable: %s", name, exc)
            found[name] = f"unavailable: {str(exc)[:200] or type(exc).__name__}"
    return found
