"""One client can never read, list, change, cancel or delete another client's tasks, videos or
subtitles: every route is tried with the other client's ids (in-process, real SQLite); and an id
once handed out is never handed out again (SQLite and PostgreSQL), so a deleted object's id never
reaches another client's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, delete, event, select, text

from tests.conftest import postgres_database
from vodscribe.api.app import create_app
from vodscribe.config import Settings
from vodscribe.db.session import alembic_config, migrate, session_scope
from vodscribe.db.tables import AITask, Client, Rendition, Subtitle, Video
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


# --- ids are never handed out twice ------------------------------------------------------------------


def _client_video_subtitle(url: str, name: str) -> dict[str, int]:
    """A new client with a video and a subtitle: the ids each was given, by table."""
    with session_scope(url) as s:
        client, _ = create_client(s, name)
        video = Video(client_id=client.id, slug=f"Slug{client.id:012d}", name=name)
        s.add(video)
        s.flush()
        sub = Subtitle(video_id=video.id, name="English", language="eng", vtt="WEBVTT\n\n")
        s.add(sub)
        s.flush()
        return {"clients": client.id, "videos": video.id, "subtitles": sub.id}


def _ids_after_deleting_the_newest(url: str) -> dict[str, tuple[int, int]]:
    """For each table with a database-assigned id: the id of a row deleted while newest, and the id
    the next row gets."""
    migrate(url)
    gone = _client_video_subtitle(url, "alice")
    with session_scope(url) as s:
        s.execute(delete(Video).where(Video.id == gone["videos"]))  # cascades to the subtitle
        s.execute(delete(Client).where(Client.id == gone["clients"]))
    new = _client_video_subtitle(url, "bob")
    return {table: (gone[table], new[table]) for table in gone}


def test_sqlite_never_hands_out_a_deleted_id_again(tmp_path: Path) -> None:
    """SQLite without AUTOINCREMENT gives the next row the deleted newest row's id: another client's
    video would answer to a deleted video's id (its links, its unfinished upload)."""
    for table, (deleted, new) in _ids_after_deleting_the_newest(f"sqlite:///{tmp_path}/db.sqlite").items():
        assert new > deleted, table


def test_postgresql_never_hands_out_a_deleted_id_again() -> None:
    with postgres_database() as url:
        for table, (deleted, new) in _ids_after_deleting_the_newest(url).items():
            assert new > deleted, table


def test_the_upgrade_keeps_every_row_and_reference(tmp_path: Path) -> None:
    """Migration 0009 rebuilds SQLite tables that other tables reference (ON DELETE CASCADE): rows
    and references survive it, and ids deleted before it are not reused after it."""
    url = f"sqlite:///{tmp_path}/db.sqlite"
    command.upgrade(alembic_config(url), "0008")
    engine = create_engine(url)
    event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA foreign_keys=ON"))  # as ours
    with engine.begin() as c:
        c.execute(
            text("INSERT INTO clients (id, name, key_hash, created_at) VALUES (1, 'a', 'h1', '2026-01-01')")
        )
        for vid in (1, 2, 3):
            c.execute(
                text(
                    "INSERT INTO videos (id, client_id, slug, name, priority, auto_transcribe_audio_language,"
                    " auto_translate_subtitles_language, status, auto_ai_requested, job_state, job_attempts,"
                    " created_at, updated_at) VALUES (:id, 1, :slug, 'v', 0, 'auto', 'disable', 'ready', 0,"
                    " 'done', 0, '2026-01-01', '2026-01-01')"
                ),
                {"id": vid, "slug": f"slug{vid}"},
            )
            c.execute(
                text(
                    "INSERT INTO renditions (video_id, name, progress, status, filename)"
                    " VALUES (:v, 'mp4', 100, 'ready', 'x.mp4')"
                ),
                {"v": vid},
            )
            c.execute(
                text(
                    "INSERT INTO subtitles (video_id, name, language, vtt, created_at, updated_at)"
                    " VALUES (:v, 'E', 'eng', 'WEBVTT', '2026-01-01', '2026-01-01')"
                ),
                {"v": vid},
            )
        c.execute(text("DELETE FROM videos WHERE id = 2"))
    engine.dispose()
    migrate(url)
    with session_scope(url) as s:
        assert sorted(s.scalars(select(Video.id))) == [1, 3]
        assert sorted(s.scalars(select(Rendition.video_id))) == [1, 3]
        assert sorted(s.scalars(select(Subtitle.video_id))) == [1, 3]
        s.execute(delete(Video).where(Video.id == 3))
    with session_scope(url) as s:
        video = Video(client_id=1, slug="slug4", name="v4")
        s.add(video)
        s.flush()
        assert video.id == 4
        s.execute(delete(Video).where(Video.id == 1))  # the cascade still holds after the rebuild
        assert s.scalars(select(Rendition.video_id)).all() == []
