"""Translating what a person corrected: a subtitle's own text (an AI task given ``vtt``, or a video's
subtitle named by ``source_subtitle_id``) is translated sentence by sentence across cue borders and
timed within the source's span, in process with the real LLM backend."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import MediaServer, in_process_api, llm_model_file
from vodscribe.config import Settings
from vodscribe.db.session import migrate, session_scope
from vodscribe.db.statuses import TaskStatus, VideoStatus
from vodscribe.db.tables import AITask, Subtitle, Video
from vodscribe.schemas.videos import VideoFieldsIn
from vodscribe.services.clients import create_client
from vodscribe.services.subtitles import request_subtitle_translation
from vodscribe.services.videos import create_video
from vodscribe.speech.subtitle_formats import parse_vtt
from vodscribe.worker.ai_task_runner import run_task
from vodscribe.worker.video_runner import run_video

#: One sentence across two cues, then another: a name no translation changes.
SOURCE = """WEBVTT

00:00:01.000 --> 00:00:03.000
Ask not what Quetzalia

00:00:03.200 --> 00:00:05.000
can do for you.

00:00:05.500 --> 00:00:08.000
Ask what you can do for Quetzalia.
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    config = Settings(data_dir=tmp_path, allow_private_urls=True, llm_model=str(llm_model_file()))
    migrate(config.db_url)
    return config


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"\w+", text)}


def test_a_vtt_task_is_checked_before_it_is_stored(settings: Settings) -> None:
    with in_process_api(settings) as api:
        for body, says in [
            ({"vtt": "not a subtitle", "audio_language": "eng", "subtitles_language": "ger"}, "not valid"),
            ({"vtt": SOURCE, "subtitles_language": "ger"}, "audio_language"),
            ({"vtt": SOURCE, "url": "http://127.0.0.1/a.mp4", "audio_language": "eng"}, "not both"),
            ({"vtt": SOURCE, "audio_language": "eng", "subtitles_language": "eng"}, "already"),
            ({"audio_language": "eng"}, '"url" is not specified'),
        ]:
            r = api.post("/streaming/ai/tasks", json=body)
            assert r.status_code == 400 and says in r.json()["error"], (body, r.text)
        assert api.get("/streaming/ai/tasks").json()["count"] == 0
    assert not list((settings.data_dir / "videos").glob("task_*"))


@pytest.mark.slow  # the LLM backend translates
def test_a_vtt_task_translates_sentences_across_cues_within_the_source_span(settings: Settings) -> None:
    with in_process_api(settings) as api:
        r = api.post(
            "/streaming/ai/tasks", json={"vtt": SOURCE, "audio_language": "en", "subtitles_language": "de"}
        )
        assert r.status_code == 201, r.text
        task_id = r.json()["task_id"]
        assert run_task(settings, task_id) == TaskStatus.SUCCESS
        task = api.get(f"/streaming/ai/tasks/{task_id}").json()
    result = task["result"]
    assert task["task_data"]["url"] == "vtt" and result["languages"] == ["eng", "ger"]
    cues = parse_vtt(result["vttContent"])
    assert cues and all(1.0 <= c.start < c.end <= 8.0 for c in cues)
    assert all(len(line) <= 42 for c in cues for line in c.text.splitlines())
    text = result["concatenated_text"]
    assert text.count("Quetzalia") == 2, text
    assert not {"ask", "what", "you"} <= _words(text), text  # German now, not the English kept
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(AITask.upload).where(AITask.id == task_id)) is None  # the text deleted


@pytest.mark.slow  # Whisper recognises, the LLM translates
def test_the_correction_is_what_gets_translated(settings: Settings, media_server: MediaServer) -> None:
    with session_scope(settings.db_url) as s:
        client, _ = create_client(s, "c")
        url = media_server.url("jfk_librivox.mp4")
        fields = VideoFieldsIn(name="speech", origin_url=url, auto_transcribe_audio_language="eng")
        video_id = create_video(s, settings, client, fields).id
    assert run_video(settings, video_id) == VideoStatus.READY
    with session_scope(settings.db_url) as s:
        [first] = s.scalars(select(AITask.id).where(AITask.video_id == video_id)).all()
    assert run_task(settings, first) == TaskStatus.SUCCESS
    with session_scope(settings.db_url) as s:
        [english] = s.scalars(select(Subtitle).where(Subtitle.video_id == video_id)).all()
        recognised = english.vtt
        assert "country" in recognised
        english.vtt = recognised.replace("country", "Quetzalia")  # corrected by hand
        subtitle_id = english.id
    with session_scope(settings.db_url) as s:
        video, owner = s.get(Video, video_id), s.get(type(client), client.id)
        assert video is not None and owner is not None
        [task] = request_subtitle_translation(s, settings, owner, video, subtitle_id, "ger")
        task_id = task.id
    assert run_task(settings, task_id) == TaskStatus.SUCCESS
    with session_scope(settings.db_url) as s:
        subtitles = {
            sub.name: sub.vtt for sub in s.scalars(select(Subtitle).where(Subtitle.video_id == video_id))
        }
    german = subtitles["German (AI-translated)"]
    assert "Quetzalia" in german, german  # the correction, not the recognised word, was translated
    source = parse_vtt(subtitles["English (AI-generated)"])
    translated = parse_vtt(german)
    assert all(source[0].start <= c.start < c.end <= source[-1].end for c in translated)


def test_the_subtitle_route_asks_for_translations_of_a_subtitle(settings: Settings) -> None:
    with in_process_api(settings) as api:
        video = api.post("/streaming/videos", json={"name": "talk"}).json()
        video_id = video["id"]
        sub = api.post(f"/streaming/videos/{video_id}/subtitles", json={"language": "eng", "vtt": SOURCE})
        assert sub.status_code == 200, sub.text
        asked = api.post(
            f"/streaming/videos/{video_id}/subtitles",
            json={"source_subtitle_id": sub.json()["id"], "auto_translate_subtitles_language": "ger,fre,eng"},
        )
        assert asked.status_code == 200, asked.text
        body = asked.json()
        assert body["language"] == "eng" and len(body["ai_task_ids"]) == 2  # English is the source
        tasks = [api.get(f"/streaming/ai/tasks/{t}").json() for t in body["ai_task_ids"]]
        assert [t["task_data"]["subtitles_language"] for t in tasks] == ["ger", "fre"]
        assert {t["task_data"]["source_subtitle_id"] for t in tasks} == {sub.json()["id"]}
        missing = api.post(
            f"/streaming/videos/{video_id}/subtitles",
            json={"source_subtitle_id": 999999, "auto_translate_subtitles_language": "ger"},
        )
        assert missing.status_code == 404, missing.text
        nothing = api.post(
            f"/streaming/videos/{video_id}/subtitles",
            json={"source_subtitle_id": sub.json()["id"], "auto_translate_subtitles_language": "eng"},
        )
        assert nothing.status_code == 422, nothing.text
    with in_process_api(settings, "b") as other:  # another client's video and subtitle are not there
        foreign = other.post(
            f"/streaming/videos/{video_id}/subtitles",
            json={"source_subtitle_id": sub.json()["id"], "auto_translate_subtitles_language": "ger"},
        )
    assert foreign.status_code == 404
