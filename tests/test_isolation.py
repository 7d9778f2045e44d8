"""One client can never read, list, change, cancel or delete another client's tasks, videos or
subtitles: every route is tried with the other client's ids (in-process, real SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from vodscribe.api.app import create_app
from vodscribe.config import Settings
from vodscribe.db.models import AITask, Subtitle, Video
from vodscribe.db.session import migrate, session_scope
from vodscribe.services.clients import create_client


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], dict[str, object]]]:
    settings = Settings(data_dir=tmp_path, rate_limit_per_s=0)
    migrate(settings.db_url)
    with session_scope(settings.db_url) as s:
        alice, alice_key = create_client(s, "alice")
        _, bob_key = create_client(s, "bob")
        video = Video(client_id=alice.id, slug="AliceSlug0123456", name="alice's", status="ready")
        s.add(video)
        s.flush()
        sub = Subtitle(video_id=video.id, name="English", language="eng", vtt="WEBVTT\n\n")
        task = AITask(client_id=alice.id, status="PENDING", task_data={"url": "https://93.184.215.14/a.mp4"})
        s.add_all([sub, task])
        s.flush()
        ids: dict[str, object] = {"video": video.id, "sub": sub.id, "task": task.id}
    with TestClient(create_app(settings)) as client:
        yield client, {"alice": alice_key, "bob": bob_key}, ids


ROUTES = [
    ("GET", "/streaming/ai/tasks/{task}", None),
    ("GET", "/streaming/ai/results/{task}", None),
    ("POST", "/streaming/ai/tasks/{task}/cancel", None),
    ("GET", "/streaming/videos/{video}", None),
    ("PATCH", "/streaming/videos/{video}", {"name": "stolen"}),
    ("DELETE", "/streaming/videos/{video}", None),
    ("GET", "/streaming/videos/{video}/subtitles", None),
    ("POST", "/streaming/videos/{video}/subtitles", {"language": "eng", "vtt": "WEBVTT\n\n"}),
    ("POST", "/streaming/videos/{video}/subtitles", {"auto_transcribe_audio_language": "auto"}),
    ("GET", "/streaming/videos/{video}/subtitles/{sub}", None),
    ("PATCH", "/streaming/videos/{video}/subtitles/{sub}", {"name": "stolen"}),
    ("DELETE", "/streaming/videos/{video}/subtitles/{sub}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_other_clients_objects_do_not_exist_for_you(world, method: str, path: str, body: dict | None) -> None:
    client, keys, ids = world
    url = path.format(**ids)
    r = client.request(method, url, json=body, headers={"Authorization": f"APIKey {keys['bob']}"})
    assert r.status_code == 404, (method, url, r.status_code, r.text)
    # and nothing changed for the owner
    owner = {"Authorization": f"APIKey {keys['alice']}"}
    assert client.get(f"/streaming/videos/{ids['video']}", headers=owner).json()["name"] == "alice's"
    subs = client.get(f"/streaming/videos/{ids['video']}/subtitles", headers=owner).json()
    assert [s["name"] for s in subs] == ["English"]
    assert client.get(f"/streaming/ai/tasks/{ids['task']}", headers=owner).json()["status"] == "PENDING"


def test_lists_show_only_your_own(world) -> None:
    client, keys, ids = world
    bob = {"Authorization": f"APIKey {keys['bob']}"}
    assert client.get("/streaming/ai/tasks", headers=bob).json()["count"] == 0
    assert (
        client.get("/streaming/ai/tasks", params={"task_id": ids["task"]}, headers=bob).json()["results"]
        == []
    )
    assert client.get("/streaming/videos", headers=bob).json() == []
    assert client.get("/streaming/videos", params={"id": str(ids["video"])}, headers=bob).json() == []
    assert client.get("/streaming/videos", params={"search": "AliceSlug0123456"}, headers=bob).json() == []


@pytest.mark.parametrize(
    "route", [r for r in ROUTES] + [("GET", "/streaming/ai/tasks", None), ("GET", "/streaming/videos", None)]
)
def test_every_route_needs_a_key(world, route: tuple[str, str, dict | None]) -> None:
    client, _, ids = world
    method, path, body = route
    r = client.request(method, path.format(**ids), json=body)
    assert r.status_code == 401 and r.json() == {"error": "Authentication credentials were not provided."}
