"""Request validation, auth and limits, in-process (FastAPI TestClient, real SQLite, filesystem broker).

No worker consumes the queue here: these tests are about what the API accepts and refuses."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from vodscribe.api.app import create_app
from vodscribe.config import Settings
from vodscribe.db.session import migrate, session_scope
from vodscribe.db.tables import AITask, Client, Video
from vodscribe.services.clients import create_client, hash_key


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path, task_queue_limit=3)
    migrate(s.db_url)
    return s


@pytest.fixture
def keys(settings: Settings) -> tuple[str, str]:
    with session_scope(settings.db_url) as s:
        _, a = create_client(s, "a")
        _, b = create_client(s, "b")
    return a, b


@pytest.fixture
def client(settings: Settings, keys: tuple[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers={"Authorization": f"APIKey {keys[0]}"}) as c:
        yield c


URL = "https://93.184.215.14/video.mp4"  # a public address literal: no DNS needed offline


def test_keys_are_stored_hashed(settings: Settings, keys: tuple[str, str]) -> None:
    with session_scope(settings.db_url) as s:
        stored = [c.key_hash for c in s.query(Client).order_by(Client.id)]
    assert stored == [hash_key(keys[0]), hash_key(keys[1])]
    assert not any(k in h for k in keys for h in stored)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Authentication credentials were not provided."),
        ("Bearer abc", "Given token not valid for any token type"),
        ("APIKey", "Given token not valid for any token type"),
        ("APIKey 1_wrong", "Token is invalid or expired"),
    ],
)
def test_auth_required(settings: Settings, header: str | None, message: str) -> None:
    with TestClient(create_app(settings)) as c:
        headers = {"Authorization": header} if header else {}
        r = c.get("/streaming/ai/tasks", headers=headers)
    assert r.status_code == 401
    assert r.json() == {"error": message}


READ_ROUTES = [
    "/streaming/ai/tasks?limit=0",
    "/streaming/ai/tasks/not-a-task",
    "/streaming/ai/results/not-a-task",
    "/streaming/videos?per_page=0&id=x",
    "/streaming/videos/1",
    "/streaming/videos/0",
]


@pytest.mark.parametrize("path", READ_ROUTES)
@pytest.mark.parametrize("header", [None, "Bearer abc", "APIKey 1_wrong"])
def test_read_routes_ask_for_the_key_before_anything_else(
    settings: Settings, path: str, header: str | None
) -> None:
    """The read routes do their work in one thread-pool trip (api.deps.Read), not through the client
    dependency. A missing or malformed key is still answered 401 before anything else; a wrong one
    before anything is read, though after the parameters' own checks (400, which tell nothing stored)."""
    with TestClient(create_app(settings)) as c:
        r = c.get(path, headers={"Authorization": header} if header else {})
    bad_parameter = "=0" in path
    assert r.status_code == (400 if header == "APIKey 1_wrong" and bad_parameter else 401), r.text


def test_scheme_word_is_case_insensitive(settings: Settings, keys: tuple[str, str]) -> None:
    with TestClient(create_app(settings)) as c:
        r = c.get("/streaming/ai/tasks", headers={"authorization": f"apikey {keys[0]}"})
    assert r.status_code == 200


def test_create_stores_task_and_queues_it(client: TestClient, settings: Settings) -> None:
    r = client.post(
        "/streaming/ai/tasks", json={"task_name": "transcription", "url": URL, "audio_language": "de"}
    )
    assert r.status_code == 201
    task_id = r.json()["task_id"]
    body = client.get(f"/streaming/ai/tasks/{task_id}").json()
    assert body["status"] == "PENDING"
    assert body["progress"] == 0
    assert body["task_data"] == {
        "task_name": "transcription",
        "url": URL,
        "audio_language": "ger",
        "client_id": 1,
    }
    assert body["processing_time"] == {"started_at": None, "completed_at": None, "total_time_sec": None}
    queued = list((settings.broker_dir / "queue").iterdir())
    assert len(queued) == 1 and task_id in queued[0].read_text()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"task_name": "transcription"}, '"url" is not specified'),
        ({"url": "ftp://example.com/a.mp4"}, "http"),
        ({"url": "file:///etc/passwd"}, "http"),
        ({"url": "not a url"}, "URL"),
        ({"url": "https://user:pw@example.com/a.mp4"}, "user name"),
        ({"url": "http://127.0.0.1:8000/a.mp4"}, "private"),
        ({"url": "http://10.1.2.3/a.mp4"}, "private"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "private"),
        ({"url": "http://[::1]/a.mp4"}, "private"),
        ({"url": "http://0x7f000001/a.mp4"}, ""),
        ({"url": "http://localhost/a.mp4"}, "private"),
        ({"url": "http://93.184.215.14:6379/a.mp4"}, "port is not allowed (80, 443, 8080, 8443 are)"),
        ({"url": URL, "audio_language": "xx1"}, "Language code is not recognized"),
        ({"url": URL, "subtitles_language": "klingon"}, "Language code is not recognized"),
        ({"url": URL, "client_user_id": "x" * 257}, "client_user_id"),
        ({"url": URL, "task_name": "dance"}, "task_name"),
    ],
)
def test_bad_requests_are_400(client: TestClient, settings: Settings, body: dict, message: str) -> None:
    r = client.post("/streaming/ai/tasks", json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
    with session_scope(settings.db_url) as s:
        assert s.query(AITask).count() == 0, "nothing is stored for a refused request"


def test_common_media_ports_are_allowed(client: TestClient) -> None:
    r = client.post("/streaming/ai/tasks", json={"url": "https://93.184.215.14:8443/video.mp4"})
    assert r.status_code == 201, r.text


def test_malformed_json_is_400(client: TestClient) -> None:
    r = client.post("/streaming/ai/tasks", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert "error" in r.json()


def test_content_moderation_is_a_disabled_feature(client: TestClient) -> None:
    r = client.post(
        "/streaming/ai/tasks", json={"task_name": "content-moderation", "url": URL, "category": "nsfw"}
    )
    assert r.status_code == 422
    assert "Feature is disabled" in r.json()["error"]


def test_queue_limit_per_client(client: TestClient, settings: Settings, keys: tuple[str, str]) -> None:
    for _ in range(settings.task_queue_limit):
        assert client.post("/streaming/ai/tasks", json={"url": URL}).status_code == 201
    r = client.post("/streaming/ai/tasks", json={"url": URL})
    assert r.status_code == 400
    assert r.json() == {"error": "Queue limit reached (3), try later."}
    # another client is not affected
    r = client.post("/streaming/ai/tasks", json={"url": URL}, headers={"Authorization": f"APIKey {keys[1]}"})
    assert r.status_code == 201


def test_unknown_task_is_404(client: TestClient) -> None:
    r = client.get("/streaming/ai/tasks/8b0c8a4e-0000-0000-0000-000000000000")
    assert r.status_code == 404
    assert r.json()["error"] == "Task not found"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"page": 0}, 400),
        ({"limit": 0}, 400),
        ({"status": "DONE"}, 400),
        ({"date_created": "yesterday"}, 400),
        ({"ordering": "-status"}, 200),
        ({"date_created": "2026-11-25T10:00:00Z"}, 200),
    ],
)
def test_list_parameters(client: TestClient, params: dict, status: int) -> None:
    assert client.get("/streaming/ai/tasks", params=params).status_code == status


def test_info_requires_type_and_language(client: TestClient) -> None:
    assert client.get("/streaming/ai/info").json() == {"error": "Invalid config type"}
    assert client.get("/streaming/ai/info", params={"type": "language_support"}).status_code == 400
    r = client.get("/streaming/ai/info", params={"type": "language_support", "audio_language": "ukr"})
    assert r.json() == {"supported": True}


def test_legacy_endpoints(client: TestClient) -> None:
    r = client.post("/streaming/ai/transcribe", json={"url": URL, "audio_language": "bre"})
    assert r.status_code == 201
    body = client.get(f"/streaming/ai/results/{r.json()['task_id']}").json()
    assert body["task_data"]["audio_language"] == "bre" and body["status"] == "PENDING"


def test_own_mp4_url_is_accepted_with_the_guard_on(client: TestClient, settings: Settings) -> None:
    with session_scope(settings.db_url) as s:
        video = Video(client_id=1, slug="AbCdEf0123456789", name="v", status="ready")
        s.add(video)
        s.flush()
        video_id = video.id
    own = "http://testserver/videos/1_AbCdEf0123456789/vod240p.mp4"
    r = client.post("/streaming/ai/tasks", json={"url": own})
    assert r.status_code == 201, r.text
    with session_scope(settings.db_url) as s:
        task = s.get(AITask, r.json()["task_id"])
        assert task is not None and task.video_id == video_id and task.attach_subtitle is False
    # another client's video, or an unknown slug, is just an ordinary (unresolvable) URL
    for url in (
        "http://testserver/videos/2_AbCdEf0123456789/vod240p.mp4",
        "http://testserver/videos/1_nope/vod240p.mp4",
    ):
        assert client.post("/streaming/ai/tasks", json={"url": url}).status_code == 400


def test_request_rate_limit_per_client(tmp_path: Path, keys: tuple[str, str], settings: Settings) -> None:
    limited = Settings(data_dir=settings.data_dir, rate_limit_per_s=1.0, rate_limit_burst=3)
    with TestClient(create_app(limited)) as c:
        a = {"Authorization": f"APIKey {keys[0]}"}
        codes = [c.get("/streaming/ai/tasks", headers=a).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        r = c.get("/streaming/ai/tasks", headers=a)
        assert r.json() == {"error": "Too many requests, try later"}
        assert int(r.headers["retry-after"]) >= 1
        # the limit is per client
        assert c.get("/streaming/ai/tasks", headers={"Authorization": f"APIKey {keys[1]}"}).status_code == 200


def test_request_body_limit(tmp_path: Path, keys: tuple[str, str], settings: Settings) -> None:
    small = Settings(data_dir=settings.data_dir, max_body_bytes=2000)
    with TestClient(create_app(small), headers={"Authorization": f"APIKey {keys[0]}"}) as c:
        r = c.post("/streaming/ai/tasks", json={"url": URL, "client_entity_data": "x" * 3000})
        assert r.status_code == 413
        assert r.json() == {"status": 413, "error": "Request body is too large."}
        assert c.post("/streaming/ai/tasks", json={"url": URL}).status_code == 201

        def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"url": "' + URL.encode() + b'", "client_entity_data": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}'

        r = c.post("/streaming/ai/tasks", content=chunked(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["status"] == 413


def test_api_processes_follow_the_cpus(tmp_path: Path) -> None:
    """One API process per CPU this process may use (at most 4), on every set-up: the rate limiter's
    counts are shared by all of them (Redis, or the data directory's file)."""
    cpus = min(len(os.sched_getaffinity(0)), 4)
    embedded = {"data_dir": tmp_path, "broker_url": None, "rate_limit_per_s": 20.0, "api_processes": None}
    assert Settings(**embedded).processes == cpus
    assert Settings(**{**embedded, "broker_url": "redis://127.0.0.1:6379/0"}).processes == cpus
    assert Settings(**{**embedded, "api_processes": 3}).processes == 3
