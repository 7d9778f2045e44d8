"""The scale-out configuration: PostgreSQL for state, Redis as the Celery broker.

CI sets VODSCRIBE_TEST_REQUIRE_SERVICES=1, so these tests fail there (instead of skipping) when the
services are missing."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from gcore import Gcore

from tests.conftest import (
    REDIS_URL,
    MediaServer,
    Service,
    free_port,
    postgres_database,
    start_service,
    start_worker,
    stop_service,
    unavailable,
    wait_for,
)
from tests.processes import stop_group
from tests.test_webhooks import pending_delivery, receiving
from tests.waiting import eventually
from vodscribe.api.app import create_app
from vodscribe.config import Settings
from vodscribe.db.session import migrate
from vodscribe.queue import dispatch_webhook

# a vodscribe serve and workers (which load Whisper) on PostgreSQL and Redis
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this module, dropped afterwards."""
    with postgres_database() as url:
        yield url


def _redis_database(number: int) -> str:
    url = REDIS_URL.rsplit("/", 1)[0] + f"/{number}"
    try:
        redis.Redis.from_url(url).flushdb()
    except Exception as exc:
        unavailable("Redis", exc)
    return url


@pytest.fixture(scope="module")
def redis_url() -> str:
    return _redis_database(9)


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory, pg_database: str, redis_url: str) -> Iterator[Service]:
    """The scale-out topology: an API server without a worker, and a separate prefork worker."""
    svc = start_service(
        tmp_path_factory.mktemp("pg"),
        {"VODSCRIBE_DATABASE_URL": pg_database, "VODSCRIBE_BROKER_URL": redis_url},
        args=("serve", "--no-worker"),
    )
    workers = [
        start_worker(svc, "-Q", "asr,media", "--pool", "prefork", "--concurrency", "1") for _ in range(2)
    ]
    yield svc
    for worker in workers:
        stop_group(worker)
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


def _task_row(pg_database: str, task_id: str) -> tuple[str, int, str]:
    engine = sa.create_engine(pg_database)
    try:
        with engine.connect() as c:
            row = c.execute(
                sa.text("select status, attempts, worker from ai_tasks where id = :id"), {"id": task_id}
            ).one()
    finally:
        engine.dispose()
    return row[0], row[1], row[2]


def test_worker_killed_with_sigkill_another_finishes(
    scaled: Service, pg_database: str, media_server: MediaServer
) -> None:
    """Two prefork workers; the one running the task is killed -9 (main process and child). The
    reaper sees the heartbeat stop and re-dispatches; the other worker finishes it, once."""
    with httpx.Client(base_url=scaled.base_url, headers=scaled.headers()) as c:
        url = media_server.url("slow/multilingual_en_de.mp3")
        task_id = c.post("/streaming/ai/tasks", json={"url": url, "client_user_id": "sigkill"}).json()[
            "task_id"
        ]
        wait_for(c, task_id, until=("STARTED",), timeout=60)
        status, attempts, worker = _task_row(pg_database, task_id)
        assert (status, attempts) == ("STARTED", 1)
        child = int(worker.rsplit(":", 1)[1])
        os.killpg(os.getpgid(child), signal.SIGKILL)  # the whole worker: main process and pool child
        task = wait_for(c, task_id, timeout=120)
        assert task["status"] == "SUCCESS", task
        assert task["result"]["languages"] == ["eng", "ger"]
        status, attempts, new_worker = _task_row(pg_database, task_id)
        assert attempts == 2 and new_worker != worker
        mine = c.get("/streaming/ai/tasks", params={"search": "sigkill", "limit": 100}).json()
        assert mine["count"] == 1, "one task, one result"


def test_api_server_restart_loses_nothing(scaled: Service, media_server: MediaServer, tmp_path: Path) -> None:
    """The API server dies (kill -9) right after accepting tasks; a new one serves their results."""
    env = {
        k: v
        for k, v in scaled.env.items()
        if k.startswith("VODSCRIBE_") and k not in ("VODSCRIBE_PORT", "VODSCRIBE_DATA_DIR")
    }
    first = start_service(tmp_path / "a", env, args=("serve", "--no-worker"))
    names = ("ldc93s1.wav", "sr_french.aiff", "sr_chinese.flac")
    with httpx.Client(base_url=first.base_url, headers=scaled.headers()) as c:
        ids = [
            c.post("/streaming/ai/tasks", json={"url": media_server.url(n)}).json()["task_id"] for n in names
        ]
    os.killpg(first.proc.pid, signal.SIGKILL)
    second = start_service(tmp_path / "b", env, args=("serve", "--no-worker"))
    try:
        with httpx.Client(base_url=second.base_url, headers=scaled.headers()) as c:
            results = [wait_for(c, task_id, timeout=120) for task_id in ids]
    finally:
        stop_service(second)
    assert [t["status"] for t in results] == ["SUCCESS"] * 3
    assert [t["result"]["languages"] for t in results] == [["eng"], ["fre"], ["chi"]]


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    """Media and ASR on separate workers (as on separate machines: they share only the database, the
    broker and the media store); yields the service and its database."""
    with postgres_database() as database:
        svc = start_service(
            tmp_path_factory.mktemp("split"),
            {"VODSCRIBE_DATABASE_URL": database, "VODSCRIBE_BROKER_URL": _redis_database(10)},
            args=("serve", "--no-worker"),
        )
        workers = [start_worker(svc, "-Q", queue, "--concurrency", "1") for queue in ("media", "asr")]
        yield svc, database
        for worker in workers:
            stop_group(worker)
        stop_service(svc)


def test_ai_subtitles_start_from_the_origin_on_the_asr_worker(
    split: tuple[Service, str], media_server: MediaServer
) -> None:
    """The AI task is requested as soon as the origin is checked, runs on the `asr` worker, and its
    subtitle is attached once (whichever of the two jobs ends last), listed in the master playlist;
    the origin kept for it is deleted afterwards."""
    svc, database = split
    sdk = Gcore(api_key=svc.api_key, base_url=svc.base_url, max_retries=0)
    created = sdk.streaming.videos.create(
        video={"name": "split", "origin_url": media_server.url("jfk_librivox.mp4")}
    )

    def attached() -> list:
        subs = sdk.streaming.videos.subtitles.list(created.id)
        assert subs, "no subtitle yet"
        return subs

    [sub] = eventually(attached, timeout=180, interval=0.3, what=f"video {created.id} with its subtitle")
    assert sub.name == "English (AI-generated)" and "fellow americans" in sub.vtt.lower()
    video = sdk.streaming.videos.get(created.id)
    assert video.status == "ready"
    engine = sa.create_engine(database)
    try:
        with engine.connect() as c:
            rows = c.execute(
                sa.text(
                    "select t.created_at < v.updated_at, t.worker, v.job_worker from ai_tasks t"
                    " join videos v on v.id = t.video_id where v.id = :id"
                ),
                {"id": created.id},
            ).all()
            [(requested_before_ready, asr_worker, media_worker)] = rows
            assert requested_before_ready, "the AI task was created before the video was ready"
            assert asr_worker != media_worker

            def source_deleted() -> bool:
                query = sa.text("select asr_source from videos where id = :id")
                return c.execute(query, {"id": created.id}).scalar() is None

            eventually(source_deleted, timeout=30, interval=0.3, what="the stored origin released")
    finally:
        engine.dispose()
    key = f"{video.client_id}_{video.slug}"
    assert not (svc.data_dir / "videos" / key / "source").exists()
    master = httpx.get(video.hls_url, timeout=30).text
    assert master.count('NAME="English (AI-generated)"') == 1


# --- outages: Redis restarts under a worker, the database goes away under the API and workers ----------


@contextlib.contextmanager
def _own_redis(port: int) -> Iterator[Callable[[], None]]:
    """A redis-server of this test's own on ``port`` (nothing kept on disk); yields a function that
    restarts it on the same port."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server", FileNotFoundError("redis-server"))
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    procs = [subprocess.Popen(command, stdout=subprocess.DEVNULL)]
    client = redis.Redis(port=port)
    eventually(lambda: _pings(client), timeout=20, what="redis-server up")

    def restart() -> None:
        procs[-1].terminate()
        procs[-1].wait(timeout=20)
        procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
        eventually(lambda: _pings(client), timeout=20, what="redis-server up again")

    try:
        yield restart
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_a_worker_holding_a_delayed_message_survives_a_redis_restart(tmp_path: Path) -> None:
    """A retry's countdown is a message the worker holds; when Redis restarts, Celery's worker then
    exits (kombu restores unacknowledged messages on a closed connection). ``vodscribe worker`` keeps
    it running: a delivery queued after the restart is sent."""
    port = free_port()
    with _own_redis(port) as restart, receiving() as receiver:
        broker = f"redis://127.0.0.1:{port}/0"
        settings = Settings(data_dir=tmp_path, broker_url=broker, allow_private_urls=True)
        migrate(settings.db_url)
        env = {
            **os.environ,
            "VODSCRIBE_DATA_DIR": str(tmp_path),
            "VODSCRIBE_BROKER_URL": broker,
            "VODSCRIBE_ALLOW_PRIVATE_URLS": "true",
        }
        log = open(tmp_path / "worker.log", "ab")  # noqa: SIM115 (kept open for the process's life)
        command = ["worker", "-Q", "webhooks", "--pool", "threads", "-c", "2"]
        worker = subprocess.Popen(
            [sys.executable, "-m", "vodscribe.cli", *command],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            eventually(lambda: b"ready." in (tmp_path / "worker.log").read_bytes(), timeout=60, what="worker")
            dispatch_webhook(settings, str(uuid.uuid4()), countdown=300)  # held by the worker
            held = redis.Redis(port=port)
            eventually(lambda: held.hlen("unacked") > 0, timeout=20, what="the delayed message held")
            restart()
            delivery = pending_delivery(settings, receiver.url)
            dispatch_webhook(settings, delivery)
            eventually(lambda: receiver.received, timeout=90, what="a delivery after the restart")
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
        finally:
            stop_group(worker)


def test_a_task_that_meets_the_database_down_is_sent_again_soon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database unreachable when a task starts: the message is retried after seconds (Celery's
    retry), not acknowledged and left for the reaper's re-send minutes later."""
    from vodscribe.worker import tasks

    down = Settings(data_dir=tmp_path, database_url="postgresql+psycopg://postgres@127.0.0.1:9/none")
    calls: list[str] = []

    def run_task(settings: Settings, task_id: str) -> str:
        calls.append(task_id)
        if len(calls) == 1:
            return real_run_task(down, task_id)  # the real claim, on a database that is not there
        return "SUCCESS"

    real_run_task = tasks.run_task
    monkeypatch.setattr(tasks, "run_task", run_task)
    result = tasks.transcribe.apply(args=["a-task"])
    assert (result.state, calls) == ("SUCCESS", ["a-task", "a-task"]), result.traceback


def test_the_api_answers_503_while_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgresql+psycopg://postgres@127.0.0.1:9/none")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for path in ("/streaming/ai/tasks", "/streaming/videos"):
            r = client.get(path, headers={"Authorization": "APIKey some-key"})
            assert r.status_code == 503 and r.headers["retry-after"] == "5", (path, r.text)
            assert r.json()["error"] == "The database is unavailable; try again shortly."
