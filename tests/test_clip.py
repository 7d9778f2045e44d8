"""``clip_start_seconds`` / ``clip_duration_seconds``: only that segment of the origin is processed.

In process (as in test_video_ai): the API takes the video (FastAPI TestClient, real SQLite), the test
runs its media job (real download from 127.0.0.1, real ffmpeg) and its AI task (real Whisper)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import MediaServer, in_process_api
from vodscribe.config import Settings
from vodscribe.db.session import session_scope
from vodscribe.db.statuses import TaskStatus, VideoStatus
from vodscribe.db.tables import AITask, Subtitle, Video
from vodscribe.services.subtitles import HLS_META
from vodscribe.worker.ai_task_runner import run_task
from vodscribe.worker.video_runner import run_video

# 24 s: JFK 0-11 s ("... ask not what your country ..."), "mister john dashwood ..." 12-19.1 s,
# "he was not an ill disposed young man" 20.1-23.1 s (tests/data/README.md).
SPEECH = "jfk_librivox.mp4"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, Settings]]:
    settings = Settings(data_dir=tmp_path, allow_private_urls=True)
    with in_process_api(settings, "c") as c:
        yield c, settings


def _create(client: TestClient, **fields: Any) -> dict[str, Any]:
    r = client.post("/streaming/videos", json={"video": {"name": "clip", **fields}})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _duration(path: Path) -> float:
    with av.open(str(path)) as container:
        return float(container.duration or 0) / av.time_base


def _video_dir(settings: Settings, video: dict[str, Any]) -> Path:
    return settings.data_dir / "videos" / f"{video['client_id']}_{video['slug']}"


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"clip_start_seconds": -1}, {"clip_start_seconds": ["must be greater than or equal to 0"]}),
        (
            {"clip_duration_seconds": 5},
            {"clip_duration_seconds": ["can only be used with clip_start_seconds"]},
        ),
        (
            {"clip_start_seconds": 3, "clip_duration_seconds": 0},
            {"clip_duration_seconds": ["must be greater than 0"]},
        ),
        ({"clip_start_seconds": "3"}, {"clip_start_seconds": ["must be an integer"]}),
        ({"clip_start_seconds": 1.5}, {"clip_start_seconds": ["must be an integer"]}),
    ],
)
def test_bad_clips_are_refused(
    api: tuple[TestClient, Settings], fields: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    client, _ = api
    r = client.post("/streaming/videos", json={"video": {"name": "v", **fields}})
    assert (r.status_code, r.json()) == (422, {"errors": errors})
    assert client.get("/streaming/videos").json() == []


@pytest.mark.slow  # Whisper in this process
def test_only_the_clip_is_transcoded_and_transcribed(
    api: tuple[TestClient, Settings], media_server: MediaServer
) -> None:
    client, settings = api
    created = _create(
        client,
        origin_url=media_server.url(SPEECH),
        clip_start_seconds=12,
        clip_duration_seconds=8,
        auto_transcribe_audio_language="eng",
    )
    assert run_video(settings, created["id"]) == VideoStatus.READY
    video = client.get(f"/streaming/videos/{created['id']}").json()
    assert video["status"] == "ready" and 7_800 <= video["duration"] <= 8_200, video
    folder = _video_dir(settings, video)
    for rendition in video["converted_videos"]:
        assert 7.8 <= _duration(folder / f"{rendition['name']}.mp4") <= 8.2
    assert 7.8 <= json.loads((folder / HLS_META).read_text())["duration"] <= 8.2
    assert (folder / "screenshot.jpg").stat().st_size > 0
    with session_scope(settings.db_url) as s:
        [task] = s.scalars(select(AITask).where(AITask.video_id == video["id"]))
        task_id = task.id
    assert run_task(settings, task_id) == TaskStatus.SUCCESS
    with session_scope(settings.db_url) as s:
        [sub] = s.scalars(select(Subtitle).where(Subtitle.video_id == video["id"]))
        vtt = sub.vtt
    text = vtt.lower()
    assert "dashwood" in text, vtt
    assert "your country" not in text and "ill disposed" not in text, vtt
    times = re.findall(r"(\d\d):(\d\d):(\d\d\.\d\d\d) --> (\d\d):(\d\d):(\d\d\.\d\d\d)", vtt)
    seconds = [int(h) * 3600 + int(m) * 60 + float(s) for h, m, s, *_ in times]
    ends = [int(h) * 3600 + int(m) * 60 + float(s) for *_, h, m, s in times]
    assert seconds[0] < 1.5 and ends[-1] <= 8.5, vtt  # on the clip's clock: speech begins at its 0


def test_a_clip_without_duration_runs_to_the_end(
    api: tuple[TestClient, Settings], media_server: MediaServer
) -> None:
    client, settings = api
    created = _create(
        client,
        origin_url=media_server.url(SPEECH),
        clip_start_seconds=20,
        auto_transcribe_audio_language="disable",
    )
    assert run_video(settings, created["id"]) == VideoStatus.READY
    video = client.get(f"/streaming/videos/{created['id']}").json()
    assert 3_500 <= video["duration"] <= 4_500, video  # 24 s - 20 s
    [rendition] = video["converted_videos"]
    assert 3.5 <= _duration(_video_dir(settings, video) / f"{rendition['name']}.mp4") <= 4.5


def test_a_clip_past_the_end_ends_the_video_in_error(
    api: tuple[TestClient, Settings], media_server: MediaServer
) -> None:
    client, settings = api
    created = _create(
        client, origin_url=media_server.url(SPEECH), clip_start_seconds=60, clip_duration_seconds=5
    )
    assert run_video(settings, created["id"]) == VideoStatus.ERROR
    video = client.get(f"/streaming/videos/{created['id']}").json()
    assert video["status"] == "error" and video["converted_videos"] == []
    assert video["error"].startswith("clip_start_seconds (60 s) is at or past the end of the video (24."), (
        video
    )
    with session_scope(settings.db_url) as s:
        stored = s.get(Video, created["id"])
        assert stored is not None and (stored.clip_start_seconds, stored.clip_duration_seconds) == (60, 5)
    assert not (settings.work_dir / f"video-{created['id']}").exists()
