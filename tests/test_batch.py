"""``POST /streaming/videos/batch``: up to 500 videos with their subtitles, all created or none.

In process (FastAPI TestClient, real SQLite, the filesystem broker, no worker), through the official
Gcore SDK (``videos.create_multiple``, on the TestClient as its HTTP client) and plain HTTP; the end
to end run (a worker processing a batch video with its subtitles) is in test_api_videos."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gcore
import pytest
from fastapi.testclient import TestClient
from gcore import Gcore
from sqlalchemy import func, select

from vodscribe.api.app import create_app
from vodscribe.config import Settings
from vodscribe.db.session import migrate, session_scope
from vodscribe.db.tables import Subtitle, Video
from vodscribe.services import videos
from vodscribe.services.clients import create_client

VTT = "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nHello there\n"
SRT = "1\n00:00:01,000 --> 00:00:02,500\nHallo\n"
URL = "https://93.184.215.14/video.mp4"  # a public address literal: no DNS needed offline


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    settings = Settings(data_dir=tmp_path, **overrides)
    migrate(settings.db_url)
    return settings


def _client(settings: Settings) -> TestClient:
    with session_scope(settings.db_url) as s:
        _, key = create_client(s, "c")
    return TestClient(create_app(settings), headers={"Authorization": f"APIKey {key}"})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return _settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with _client(settings) as c:
        yield c


def _sdk(client: TestClient) -> Gcore:
    """The Gcore SDK, sending its requests through the in-process app with the client's key."""
    key = client.headers["Authorization"].split()[1]
    return Gcore(api_key=key, base_url=str(client.base_url), http_client=client, max_retries=0)


def _counts(settings: Settings) -> tuple[int, int]:
    with session_scope(settings.db_url) as s:
        return s.scalar(select(func.count(Video.id))) or 0, s.scalar(select(func.count(Subtitle.id))) or 0


def test_sdk_creates_a_batch_with_subtitles(client: TestClient, settings: Settings) -> None:
    sdk = _sdk(client)
    created = sdk.streaming.videos.create_multiple(
        videos=[
            {
                "name": "first",
                "origin_url": URL,
                "origin_http_headers": "Authorization: Bearer batch-secret",
                "clip_start_seconds": 2,
                "clip_duration_seconds": 5,
                "priority": 3,
                "subtitles": [
                    {"name": "English", "language": "eng", "vtt": VTT},
                    {"language": "de", "vtt": SRT},
                ],
            },
            {"name": "second", "description": "no origin"},
        ]
    )
    assert [(v.name, v.status, v.priority) for v in created] == [
        ("first", "empty", 3),
        ("second", "empty", 0),
    ]
    first, second = created
    assert first.hls_url and first.converted_videos == []
    subs = sdk.streaming.videos.subtitles.list(first.id)
    assert [(s.name, s.language, s.vtt) for s in subs] == [("English", "eng", VTT), ("German", "ger", SRT)]
    assert sdk.streaming.videos.subtitles.list(second.id) == []
    assert "batch-secret" not in json.dumps([v.model_dump() for v in created])
    with session_scope(settings.db_url) as s:
        stored = s.get(Video, first.id)
        assert stored is not None and stored.job_state == "queued"  # its job was sent
        assert (stored.clip_start_seconds, stored.clip_duration_seconds) == (2, 5)
        assert stored.origin_http_headers == "Authorization: Bearer batch-secret"
        assert s.get(Video, second.id).job_state == "idle"  # type: ignore[union-attr]
    assert len(list(settings.broker_dir.rglob("*.msg"))) == 1  # sent after the commit, for the first only
    short = sdk.streaming.videos.create_multiple(videos=[{"name": "third"}], fields="id,name,hls_url")
    assert short[0].name == "third" and short[0].id
    assert set(short[0].model_dump(exclude_unset=True)) == {"id", "name", "hls_url"}


def test_fields_restricts_each_object(client: TestClient) -> None:
    r = client.post(
        "/streaming/videos/batch?fields=id, status,screenshots",
        json={"videos": [{"name": "a"}, {"name": "b"}]},
    )
    assert r.status_code == 200, r.text
    assert [sorted(v) for v in r.json()] == [["id", "screenshots", "status"]] * 2
    r = client.post("/streaming/videos/batch?fields=id,origin_http_headers", json={"videos": [{"name": "c"}]})
    assert r.status_code == 400
    assert r.json()["status"] == 400 and "origin_http_headers" in r.json()["error"]


def test_one_bad_item_creates_nothing(client: TestClient, settings: Settings) -> None:
    good = {"name": "ok", "origin_url": URL, "subtitles": [{"language": "eng", "vtt": VTT}]}
    items = [good] * 3 + [
        {"name": "", "priority": 11},
        good,
        {"name": "bad subs", "subtitles": [{"language": "eng", "vtt": VTT}, {"language": "xx1", "vtt": VTT}]},
        {"name": "bad vtt", "subtitles": [{"language": "fre", "vtt": "just text"}]},
        {"name": "no vtt", "subtitles": [{"language": "fre"}]},
        {"name": "bad headers", "origin_http_headers": "Host: a.example", "clip_duration_seconds": 3},
    ]
    r = client.post("/streaming/videos/batch", json={"videos": items})
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert errors["videos[3].name"] == ["can't be blank"]
    assert errors["videos[3].priority"] == ["must be between -10 and 10"]
    assert "Language code is not recognized" in errors["videos[5].subtitles[1]"][0]
    assert errors["videos[6].subtitles[0]"][0].startswith("Invalid subtitles")
    assert errors["videos[7].subtitles[0]"] == ['The "vtt" field is empty.']
    assert "Host header cannot be set" in errors["videos[8].origin_http_headers"][0]
    assert errors["videos[8].clip_duration_seconds"] == ["can only be used with clip_start_seconds"]
    assert set(errors) == {
        "videos[3].name", "videos[3].priority", "videos[5].subtitles[1]", "videos[6].subtitles[0]",
        "videos[7].subtitles[0]", "videos[8].origin_http_headers", "videos[8].clip_duration_seconds",
    }  # fmt: skip
    r = client.post("/streaming/videos/batch", json={"videos": [good, {"name": 5}]})
    assert r.json() == {"errors": {"videos[1].name": ["must be a string"]}}
    assert _counts(settings) == (0, 0)
    assert not list((settings.broker_dir).rglob("*.msg")), "no job was sent"


@pytest.mark.parametrize(
    ("body", "status", "answer"),
    [
        (
            {"videos": [{"name": "v"}] * 501},
            422,
            {"errors": {"videos": ["is too long (maximum is 500 items)"]}},
        ),
        ({"videos": []}, 422, {"errors": {"videos": ["can't be blank"]}}),
        ({}, 422, {"errors": {"videos": ["can't be blank"]}}),
        ({"videos": "x"}, 422, {"errors": {"videos": ["must be a list"]}}),
        ({"videos": ["x"]}, 422, {"errors": {"videos[0]": ["must be a JSON object"]}}),
        (
            {"videos": [{"name": "v", "subtitles": {}}]},
            422,
            {"errors": {"videos[0].subtitles": ["must be a list"]}},
        ),
    ],
)
def test_bad_batches(client: TestClient, settings: Settings, body: Any, status: int, answer: Any) -> None:
    r = client.post("/streaming/videos/batch", json=body)
    assert (r.status_code, r.json()) == (status, answer)
    assert _counts(settings) == (0, 0)


def test_500_videos_at_once(client: TestClient, settings: Settings) -> None:
    r = client.post(
        "/streaming/videos/batch?fields=id", json={"videos": [{"name": f"v{i}"} for i in range(500)]}
    )
    assert r.status_code == 200 and len(r.json()) == 500
    ids = [v["id"] for v in r.json()]
    assert ids == sorted(ids) and _counts(settings) == (500, 0)


def test_the_batch_body_may_be_larger_than_others(tmp_path: Path) -> None:
    """Its own limit (Gcore: 64 MB, ``max_batch_body_bytes``) instead of ``max_body_bytes``; 413 past it."""
    settings = _settings(tmp_path, max_body_bytes=64 * 1024, max_batch_body_bytes=1024 * 1024)
    text = "WEBVTT\n\n" + "".join(
        f"00:00:{i:02d}.000 --> 00:00:{i:02d}.500\n{'x' * 2000}\n\n" for i in range(50)
    )
    body = {"videos": [{"name": "big", "subtitles": [{"language": "eng", "vtt": text}]}]}
    assert 64 * 1024 < len(json.dumps(body)) < 1024 * 1024
    with _client(settings) as client:
        assert client.post("/streaming/videos/batch", json=body).status_code == 200
        r = client.post("/streaming/videos", json={"name": "big", "description": "x" * 70_000})
        assert r.status_code == 413
        r = client.post("/streaming/videos/batch", json={"videos": [body["videos"][0]] * 11})
        assert r.status_code == 413 and r.json() == {"status": 413, "error": "Request body is too large."}
    assert _counts(settings) == (1, 1)


def test_a_queue_that_refuses_a_job_leaves_no_video(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []

    def dispatch(_: Settings, video_id: int, countdown: float = 0) -> None:
        if sent:
            raise ConnectionError("broker down")
        sent.append(video_id)

    monkeypatch.setattr(videos, "dispatch_video", dispatch)
    r = client.post("/streaming/videos/batch", json={"videos": [{"name": "a", "origin_url": URL}] * 3})
    assert r.status_code == 503 and r.json()["status"] == 503
    assert len(sent) == 1 and _counts(settings) == (0, 0)
    with pytest.raises(gcore.NotFoundError):
        _sdk(client).streaming.videos.get(sent[0])


def _many_cues(count: int) -> str:
    def at(n: int, ms: int) -> str:
        return f"{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}.{ms:03d}"

    return "WEBVTT\n\n" + "\n".join(f"{at(n, 0)} --> {at(n, 500)}\nx\n" for n in range(count))


def test_the_cues_of_a_subtitle_and_of_a_request_are_bounded(client: TestClient, settings: Settings) -> None:
    """Parsing costs by the cue: a small text of many tiny cues is refused before it is parsed, in one
    subtitle and in a batch whose subtitles are each within bounds."""
    video = client.post("/streaming/videos", json={"video": {"name": "v"}}).json()
    too_many = _many_cues(20_001)
    assert len(too_many.encode()) < 1024 * 1024
    r = client.post(f"/streaming/videos/{video['id']}/subtitles", json={"language": "eng", "vtt": too_many})
    assert r.status_code == 422 and "20000 cues" in r.json()["error"], r.text[:300]
    r = client.post(
        f"/streaming/videos/{video['id']}/subtitles", json={"language": "eng", "vtt": _many_cues(2000)}
    )
    assert r.status_code == 200, r.text[:300]
    each = _many_cues(15_000)
    batch = [{"name": f"b{n}", "subtitles": [{"language": "eng", "vtt": each}]} for n in range(3)]
    before = _counts(settings)
    r = client.post("/streaming/videos/batch", json={"videos": batch})
    assert r.status_code == 422 and "20000 cues in all" in json.dumps(r.json()), r.text[:300]
    assert _counts(settings) == before


def test_a_video_s_subtitles_hold_a_bounded_number_of_cues(client: TestClient) -> None:
    """Its HLS playlists are rebuilt from all its subtitles on every change: their cues together are
    bounded, so no change costs more than that."""
    video = client.post("/streaming/videos", json={"video": {"name": "v"}}).json()
    url = f"/streaming/videos/{video['id']}/subtitles"
    full = _many_cues(20_000)
    for _ in range(5):
        assert client.post(url, json={"language": "eng", "vtt": full}).status_code == 200
    r = client.post(url, json={"language": "ger", "vtt": VTT})
    assert r.status_code == 422 and "100000 cues" in r.json()["error"], r.text[:300]
    first = client.get(url).json()[0]["id"]
    r = client.patch(f"{url}/{first}", json={"vtt": VTT})  # replacing frees its cues
    assert r.status_code == 200, r.text[:300]
    assert client.post(url, json={"language": "ger", "vtt": VTT}).status_code == 200
