"""A new video's AI subtitles start from its downloaded origin while the renditions are made, and are
attached once both are done.

In process, one step at a time: the test runs the media job (real download from 127.0.0.1, real
ffmpeg) and the AI task (real Whisper) itself, in the order each test needs, so what happens when the
recognition ends first, or last, or at the same moment as the job is certain rather than a matter of
speed. On local files and on S3 (moto's server on 127.0.0.1); the race on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import BUCKET, MediaServer, postgres_database
from vodscribe.api.app import create_app
from vodscribe.config import Settings
from vodscribe.db.session import migrate, session_scope
from vodscribe.db.statuses import JobState, TaskStatus, VideoStatus
from vodscribe.db.tables import AITask, Client, Subtitle, Video, utcnow
from vodscribe.errors import MediaError
from vodscribe.schemas.ai_tasks import TaskData, TranscriptionResult
from vodscribe.schemas.videos import VideoFieldsIn
from vodscribe.services.clients import create_client
from vodscribe.services.subtitles import HLS_META
from vodscribe.services.video_sources import SOURCE
from vodscribe.services.videos import create_video
from vodscribe.storage.video_files import media_store
from vodscribe.worker import video_runner
from vodscribe.worker.ai_task_runner import Claim, finish_task, run_task
from vodscribe.worker.video_runner import complete, run_video

SPEECH = "jfk_librivox.mp4"  # 24 s, 320x240, "... ask not what your country can do for you ..."
SUBTITLE = 'NAME="English (AI-generated)"'


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The embedded defaults (SQLite, the filesystem queue), with local files or an S3 bucket."""
    s3: dict[str, Any] = {}
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        s3 = {
            "s3_bucket": BUCKET,
            "s3_endpoint_url": endpoint,
            "s3_access_key": "test",
            "s3_secret_key": "test",
            "s3_prefix": f"videos-{tmp_path.name}",  # each test its own corner of the bucket
            "s3_object_acl": "public-read",  # the video files are public; the origin must not be
        }
    config = Settings(data_dir=tmp_path, allow_private_urls=True, **s3)
    migrate(config.db_url)
    return config


def _client(settings: Settings) -> Client:
    with session_scope(settings.db_url) as s:
        client, _ = create_client(s, "c")
        return client


def _new_video(settings: Settings, url: str, **fields: Any) -> int:
    """A video created as the API creates it (its job message goes to the queue; the test runs it)."""
    with session_scope(settings.db_url) as s:
        client, _ = create_client(s, "c")
        given = VideoFieldsIn(name="speech", origin_url=url, **fields)
        return create_video(s, settings, client, given).id


def _video(settings: Settings, video_id: int) -> Video:
    with session_scope(settings.db_url) as s:
        video = s.get(Video, video_id)
        assert video is not None
        return video


def _tasks(settings: Settings, video_id: int) -> list[AITask]:
    with session_scope(settings.db_url) as s:
        return list(s.scalars(select(AITask).where(AITask.video_id == video_id).order_by(AITask.created_at)))


def _subtitles(settings: Settings, video_id: int) -> list[Subtitle]:
    with session_scope(settings.db_url) as s:
        return list(s.scalars(select(Subtitle).where(Subtitle.video_id == video_id)))


def _source_stored(settings: Settings, key: str, scratch: Path) -> bool:
    scratch.mkdir(exist_ok=True)
    return media_store(settings).fetch(key, SOURCE, scratch) is not None


def _public_status(settings: Settings, key: str, name: str) -> int:
    """The answer to an anonymous GET of a video file at its public address."""
    if settings.s3_bucket:
        return httpx.get(media_store(settings).url("", key, name), timeout=30).status_code
    with TestClient(create_app(settings)) as web:
        return web.get(f"/videos/{key}/{name}").status_code


def _transcode_after(monkeypatch: pytest.MonkeyPatch, step: Callable[[], None]) -> None:
    """Make the media job run ``step`` when it reaches its transcoding, then transcode for real."""
    real = video_runner.transcode

    def transcode(*args: Any, **kwargs: Any) -> Any:
        step()
        return real(*args, **kwargs)

    monkeypatch.setattr(video_runner, "transcode", transcode)


@pytest.mark.slow  # Whisper in this process
def test_recognition_ending_before_the_renditions_is_attached_when_the_video_is_ready(
    settings: Settings, media_server: MediaServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    video_id = _new_video(settings, media_server.url(SPEECH))
    key = f"{_video(settings, video_id).client_id}_{_video(settings, video_id).slug}"
    seen: dict[str, Any] = {}

    def recognise_first() -> None:
        [task] = _tasks(settings, video_id)  # requested as soon as the origin was checked
        video = _video(settings, video_id)
        seen.update(task=task.id, status=video.status, source=video.asr_source)
        seen["stored"] = _source_stored(settings, key, tmp_path / "peek")
        seen["public"] = _public_status(settings, key, SOURCE)
        seen["outcome"] = run_task(settings, task.id)
        seen["attached_early"] = _subtitles(settings, video_id)

    _transcode_after(monkeypatch, recognise_first)
    assert run_video(settings, video_id) == VideoStatus.READY
    assert (seen["status"], seen["source"], seen["stored"]) == (VideoStatus.PENDING, SOURCE, True)
    assert seen["public"] in (403, 404), "the kept origin is not a public file"
    assert seen["outcome"] == TaskStatus.SUCCESS
    assert seen["attached_early"] == [], "nothing is attached to a video that is not ready"
    [sub] = _subtitles(settings, video_id)  # attached by the media job as the video became ready
    assert sub.ai_task_id == seen["task"] and sub.name == "English (AI-generated)"
    assert "ask not what" in sub.vtt.lower() and "your country" in sub.vtt.lower()
    master = media_store(settings).read_text(key, "master.m3u8")
    assert master is not None and master.count(SUBTITLE) == 1
    assert _public_status(settings, key, "master.m3u8") == 200
    assert _video(settings, video_id).asr_source is None
    assert not _source_stored(settings, key, tmp_path / "after"), "deleted once both have ended"


@pytest.mark.slow  # Whisper in this process
def test_recognition_ending_after_the_video_is_ready_attaches_itself(
    settings: Settings, media_server: MediaServer, tmp_path: Path
) -> None:
    video_id = _new_video(settings, media_server.url(SPEECH))
    video = _video(settings, video_id)
    key = f"{video.client_id}_{video.slug}"
    assert run_video(settings, video_id) == VideoStatus.READY
    [task] = _tasks(settings, video_id)
    assert task.status == TaskStatus.PENDING and _subtitles(settings, video_id) == []
    assert _source_stored(settings, key, tmp_path / "peek"), "kept while its task has not run"
    assert run_task(settings, task.id) == TaskStatus.SUCCESS
    [sub] = _subtitles(settings, video_id)
    assert sub.ai_task_id == task.id
    master = media_store(settings).read_text(key, "master.m3u8")
    assert master is not None and master.count(SUBTITLE) == 1
    assert not _source_stored(settings, key, tmp_path / "after")


@pytest.mark.slow  # Whisper in this process
def test_a_rerun_of_the_media_job_requests_the_subtitles_once(
    settings: Settings, media_server: MediaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    video_id = _new_video(settings, media_server.url(SPEECH), auto_translate_subtitles_language="disable")
    runs: list[int] = []

    def crash_the_first_time() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("the worker's disk hiccuped")

    _transcode_after(monkeypatch, crash_the_first_time)
    assert run_video(settings, video_id) == "retry"
    [task] = _tasks(settings, video_id)
    assert run_video(settings, video_id) == VideoStatus.READY  # the second attempt
    assert [t.id for t in _tasks(settings, video_id)] == [task.id], "no second AI task"
    assert run_task(settings, task.id) == TaskStatus.SUCCESS
    assert [s.ai_task_id for s in _subtitles(settings, video_id)] == [task.id]


@pytest.mark.slow  # Whisper in this process
def test_a_video_whose_processing_fails_gets_nothing_attached(
    settings: Settings, media_server: MediaServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The AI task still ends with its result (the audio was fine); the broken video gets no track."""
    video_id = _new_video(settings, media_server.url(SPEECH))
    video = _video(settings, video_id)

    def picture_broken() -> None:
        raise MediaError("The video track is damaged and cannot be read.")

    _transcode_after(monkeypatch, picture_broken)
    assert run_video(settings, video_id) == VideoStatus.ERROR
    [task] = _tasks(settings, video_id)
    assert run_task(settings, task.id) == TaskStatus.SUCCESS
    assert "your country" in (_tasks(settings, video_id)[0].result or {})["concatenated_text"]
    assert _subtitles(settings, video_id) == []
    assert not _source_stored(settings, f"{video.client_id}_{video.slug}", tmp_path / "after")


# --- the race ---------------------------------------------------------------------------------------
RESULT = {
    "subtitles": [{"start_time": "00:00:00.500", "end_time": "00:00:02.000", "text": "Hello there."}],
    "vttContent": "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nHello there.\n",
    "concatenated_text": "Hello there.",
    "languages": ["eng"],
    "speech_detected": True,
}
HLS = {
    "variants": [
        {
            "name": "vod240p",
            "playlist": "vod240p/index.m3u8",
            "bandwidth": 400_000,
            "average_bandwidth": 300_000,
            "width": 320,
            "height": 240,
            "codecs": "avc1.64000d,mp4a.40.2",
            "frame_rate": 25.0,
        }
    ],
    "mpegts": 126_000,
    "duration": 3.0,
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], scope="module")
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('race') / 'vodscribe.db'}"
        return
    with postgres_database() as url:
        yield url


def _almost_ready(settings: Settings, client: Client, round_: int) -> tuple[int, str, Claim]:
    """A video whose job is about to turn it ready (renditions and HLS stored) and its AI task about
    to store its result: both claimed by their workers (attempt 1)."""
    now = utcnow()
    with session_scope(settings.db_url) as s:
        video = Video(
            client_id=client.id, slug=f"race{round_}", name="race", origin_url="http://127.0.0.1/a.mp4",
            status=VideoStatus.VIEWABLE, job_state=JobState.RUNNING, job_attempts=1, heartbeat_at=now,
            has_audio=True, auto_ai_requested=True,
        )  # fmt: skip
        s.add(video)
        s.flush()
        data = {"task_name": "transcription", "url": "http://127.0.0.1/vod240p.mp4"}
        task = AITask(
            client_id=client.id, task_data=data, status=TaskStatus.STARTED, attempts=1, heartbeat_at=now,
            started_at=now, video_id=video.id, attach_subtitle=True,
        )  # fmt: skip
        s.add(task)
        s.flush()
        video_id, key, task_id = video.id, video.key, task.id
    media_store(settings).put_texts(key, {HLS_META: json.dumps(HLS)})
    return video_id, key, Claim(task_id, 1, TaskData.model_validate(data), 1, video_id, True)


def _at_once(*steps: Callable[[], object]) -> list[BaseException]:
    """Run each step in its own thread, all released at the same instant; what they raised."""
    start = threading.Barrier(len(steps))
    errors: list[BaseException] = []

    def together(step: Callable[[], object]) -> None:
        start.wait()
        try:
            step()
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=together, args=(step,)) for step in steps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_the_job_and_the_task_ending_at_once_attach_the_subtitle_once(database: str, tmp_path: Path) -> None:
    """Each round, the media job turning the video ready and the AI task storing its result start at
    the same instant (two threads, each with its own connection, as on two machines): the subtitle
    is attached exactly once and the master playlist lists it, whichever wins."""
    settings = Settings(data_dir=tmp_path, database_url=database)
    migrate(settings.db_url)
    client = _client(settings)
    for round_ in range(12):
        video_id, key, claimed = _almost_ready(settings, client, round_)
        errors = _at_once(
            partial(complete, settings, video_id, 1),
            partial(
                finish_task, settings, claimed, TaskStatus.SUCCESS, TranscriptionResult.model_validate(RESULT)
            ),
        )
        assert errors == []
        assert [s.ai_task_id for s in _subtitles(settings, video_id)] == [claimed.task_id], round_
        master = media_store(settings).read_text(key, "master.m3u8")
        assert master is not None and master.count(SUBTITLE) == 1, (round_, master)
        assert _video(settings, video_id).status == VideoStatus.READY


@pytest.mark.slow  # Whisper and the translation LLM in this process
@pytest.mark.parametrize("settings", ["local"], indirect=True)
def test_translating_a_transcribed_video_attaches_only_the_translation(
    settings: Settings, media_server: MediaServer
) -> None:
    """A translation asked for later (the console's "Translate to...") recognises the speech again,
    from the kept recognition, but does not attach a second transcription next to the one the video
    has, which may have been corrected by hand since."""
    from tests.conftest import llm_model_file
    from vodscribe.services.subtitles import parse_ai_plan, request_ai_subtitles

    settings = settings.model_copy(update={"llm_model": str(llm_model_file())})
    video_id = _new_video(settings, media_server.url(SPEECH), auto_transcribe_audio_language="auto")
    assert run_video(settings, video_id) == VideoStatus.READY
    [first] = _tasks(settings, video_id)
    assert run_task(settings, first.id) == TaskStatus.SUCCESS
    [english] = _subtitles(settings, video_id)
    corrected = english.vtt.replace("country", "COUNTRY")
    with session_scope(settings.db_url) as s:  # corrected and renamed by hand
        edited = s.get(Subtitle, english.id)
        assert edited is not None
        edited.vtt, edited.name = corrected, "English (checked)"
    with session_scope(settings.db_url) as s:
        video = s.get(Video, video_id)
        assert video is not None
        plan = parse_ai_plan("auto", "ger")
        assert plan is not None
        tasks = [(t.id, t.attach_subtitle) for t in request_ai_subtitles(s, settings, video, plan)]
    assert [attach for _, attach in tasks] == [False, True]
    for task_id, _ in tasks:
        assert run_task(settings, task_id) == TaskStatus.SUCCESS
    subtitles = sorted(_subtitles(settings, video_id), key=lambda sub: sub.id)
    assert [(sub.name, sub.language) for sub in subtitles] == [
        ("English (checked)", "eng"),
        ("German (AI-translated)", "ger"),
    ]
    assert subtitles[0].vtt == corrected
