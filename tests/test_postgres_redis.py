"""The scale-out configuration: PostgreSQL for state, Redis as the Celery broker.

CI sets VODSCRIBE_TEST_REQUIRE_SERVICES=1, so these tests fail there (instead of skipping) when the
services are missing."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa
from gcore import Gcore

from tests.conftest import (
    REQUIRE_SERVICES,
    MediaServer,
    Service,
    start_service,
    start_worker,
    stop_process,
    stop_service,
    wait_for,
)

PG_URL = os.environ.get("VODSCRIBE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("VODSCRIBE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _unavailable(what: str, exc: Exception) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required here (VODSCRIBE_TEST_REQUIRE_SERVICES=1) but unreachable: {exc}")
    pytest.skip(f"{what} not reachable: {exc}")


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this module, dropped afterwards."""
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"vodscribe_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        _unavailable("PostgreSQL", exc)
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = REDIS_URL.rsplit("/", 1)[0] + "/9"
    try:
        redis.Redis.from_url(url).flushdb()
    except Exception as exc:
        _unavailable("Redis", exc)
    return url


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory, pg_database: str, redis_url: str) -> Iterator[Service]:
    """The scale-out topology: an API server without a worker, and a separate prefork worker."""
    svc = start_service(
        tmp_path_factory.mktemp("pg"),
        {"VODSCRIBE_DATABASE_URL": pg_database, "VODSCRIBE_BROKER_URL": redis_url},
        args=("serve", "--no-worker"),
    )
    worker = start_worker(svc, "-Q", "asr,media", "--pool", "prefork", "--concurrency", "1")
    yield svc
    stop_process(worker)
    stop_service(svc)


def test_migrations_create_the_schema(scaled: Service, pg_database: str) -> None:
    engine = sa.create_engine(pg_database)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        with engine.connect() as c:
            version = c.execute(sa.text("select version_num from alembic_version")).scalar()
    finally:
        engine.dispose()
    assert {"clients", "ai_tasks", "alembic_version"} <= tables
    assert version is not None
    assert not (scaled.data_dir / "vodscribe.db").exists(), "no SQLite file when PostgreSQL is configured"


def test_transcription_on_postgres_and_redis(scaled: Service, media_server: MediaServer) -> None:
    sdk = Gcore(api_key=scaled.api_key, base_url=scaled.base_url, max_retries=0)
    created = sdk.streaming.ai_tasks.create(task_name="transcription", url=media_server.url("ldc93s1.wav"))
    with httpx.Client(base_url=scaled.base_url, headers=scaled.headers()) as c:
        task = wait_for(c, created.task_id, timeout=120)
        assert task["status"] == "SUCCESS", task
        assert "dark suit" in task["result"]["concatenated_text"].lower()
        listed = c.get("/streaming/ai/tasks", params={"search": "ldc93s1"}).json()
        assert listed["count"] == 1
        # JSON search works on PostgreSQL too (task_data cast to text)
        assert (
            c.get(
                "/streaming/ai/tasks", params={"date_created": task["processing_time"]["started_at"][:10]}
            ).json()["count"]
            == 1
        )
    assert not list(Path(scaled.data_dir).glob("broker/queue/*")), "messages went through Redis"


def test_cancel_on_postgres_and_redis(scaled: Service, media_server: MediaServer) -> None:
    with httpx.Client(base_url=scaled.base_url, headers=scaled.headers()) as c:
        task_id = c.post(
            "/streaming/ai/tasks", json={"url": media_server.url("slow/multilingual_en_de.mp3")}
        ).json()["task_id"]
        wait_for(c, task_id, until=("STARTED",), timeout=60)
        assert c.post(f"/streaming/ai/tasks/{task_id}/cancel").status_code == 202
        nxt = c.post("/streaming/ai/tasks", json={"url": media_server.url("ldc93s1.wav")}).json()["task_id"]
        assert wait_for(c, nxt, timeout=60)["status"] == "SUCCESS"
        assert c.get(f"/streaming/ai/tasks/{task_id}").json()["status"] == "REVOKED"
