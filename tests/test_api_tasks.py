"""AI tasks end to end: a real ``vodscribe serve`` (API + its Celery worker + SQLite), real clips served
over HTTP on 127.0.0.1, driven through the official Gcore Python SDK and plain HTTP."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import time
import wave
from pathlib import Path

import gcore
import httpx
import imageio_ffmpeg
import pytest
from gcore import Gcore

from tests.conftest import MediaServer, Service, start_service, stop_service, wait_for
from tests.waiting import eventually

pytestmark = pytest.mark.slow  # every test here runs on a service whose worker loads Whisper

FINAL = ("SUCCESS", "FAILURE", "REVOKED")
TIMECODE = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{3}$")


@pytest.fixture(scope="module")
def generated(media_server: MediaServer) -> MediaServer:
    """Media made here: 4 s of silence, a video without audio, a truncated MP4, a fake MP4."""
    root = media_server.root
    with wave.open(str(root / "silence.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 16000 * 4)
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=2",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", str(root / "noaudio.mp4")],
        check=True,
    )  # fmt: skip
    real = (root / "jfk_librivox.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(real[: len(real) // 3])
    (root / "playlist.mp4").write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n")
    (root / "notes.mp4").write_text("just some text, not a video\n" * 20)
    return media_server


def _poll_progress(sdk: Gcore, task_id: str, timeout: float = 120) -> tuple[object, list[int]]:
    seen: list[int] = []

    def finished() -> object:
        task = sdk.streaming.ai_tasks.get(task_id)
        seen.append(task.progress or 0)
        assert task.status in FINAL, task
        return task

    return eventually(finished, timeout=timeout, interval=0.1, what=f"task {task_id} finishing"), seen


# --- the happy path, through the SDK ---------------------------------------------------------------
def test_transcribes_mp4_through_sdk(sdk: Gcore, media_server: MediaServer) -> None:
    submitted = time.monotonic()
    created = sdk.streaming.ai_tasks.create(
        task_name="transcription",
        url=media_server.url("jfk_librivox.mp4"),
        client_user_id="user-42",
        client_entity_data='{"video_id": 7}',
    )
    task, progress = _poll_progress(sdk, created.task_id)
    waited = time.monotonic() - submitted
    assert task.status == "SUCCESS", task
    assert task.progress == 100
    assert progress == sorted(progress), "progress never goes backwards"
    assert any(0 < p < 100 for p in progress), f"progress moved through intermediate values: {progress}"
    result = task.result
    assert result.speech_detected is True
    assert result.languages == ["eng"]
    text = result.concatenated_text.lower()
    assert "ask not what your country can do for you" in text
    assert "john dashwood" in text
    assert result.vtt_content.startswith("WEBVTT\n\n1\n")
    assert result.vtt_content.endswith("\n\n")
    subs = result.subtitles
    assert len(subs) >= 3
    for s in subs:
        assert TIMECODE.match(s.start_time) and TIMECODE.match(s.end_time)
        assert s.start_time < s.end_time
        assert s.text.strip()
    # The JFK line is at 0-11 s and the LibriVox reading starts at 12 s (reference VTT).
    dashwood = next(s for s in subs if "dashwood" in s.text.lower())
    assert "00:00:11.5" <= dashwood.start_time <= "00:00:14"
    pt = task.processing_time
    assert pt.started_at is not None and pt.completed_at is not None
    assert pt.total_time_sec is not None and pt.total_time_sec > 0
    # seconds from start to completion (to the millisecond), and no longer than the test waited
    assert abs(pt.total_time_sec - (pt.completed_at - pt.started_at).total_seconds()) < 0.002
    assert pt.total_time_sec < waited + 1  # (+1: the server's clock is read separately)
    data = task.task_data
    assert data.url == media_server.url("jfk_librivox.mp4")
    assert data.client_user_id == "user-42"
    assert data.client_entity_data == '{"video_id": 7}'
    assert data.client_id == 1


def test_code_switching_finds_both_languages(api: httpx.Client, media_server: MediaServer) -> None:
    r = api.post(
        "/streaming/ai/tasks",
        json={"task_name": "transcription", "url": media_server.url("multilingual_en_de.mp3")},
    )
    assert r.status_code == 201, r.text
    task = wait_for(api, r.json()["task_id"])
    assert task["status"] == "SUCCESS", task
    result = task["result"]
    assert result["languages"] == ["eng", "ger"]
    # How sure language ID was of each (our extension); both are clear in this clip.
    assert set(result["language_confidence"]) == {"eng", "ger"}
    assert all(0.8 <= p <= 1 for p in result["language_confidence"].values()), result["language_confidence"]
    text = result["concatenated_text"]
    assert "Permission is hereby granted" in text
    assert "Software" in text and ("Rechte" in text or "verwenden" in text), text
    english = [s for s in result["subtitles"] if "permission" in s["text"].lower()]
    german = [
        s for s in result["subtitles"] if "software" in s["text"].lower() and "die" in s["text"].lower()
    ]
    assert english and german
    assert english[0]["start_time"] < "00:00:05" and german[0]["start_time"] > "00:00:29"


def test_explicit_language_is_used_and_echoed(api: httpx.Client, media_server: MediaServer) -> None:
    r = api.post(
        "/streaming/ai/tasks", json={"url": media_server.url("cheetah_test_de.wav"), "audio_language": "deu"}
    )
    assert r.status_code == 201, r.text
    task = wait_for(api, r.json()["task_id"])
    assert task["status"] == "SUCCESS", task
    assert task["task_data"]["audio_language"] == "ger"  # stored as ISO 639-2/B
    assert task["task_data"]["task_name"] == "transcription"  # defaulted when omitted
    assert task["result"]["languages"] == ["ger"]
    assert "language_confidence" not in task["result"]  # given, not identified
    assert "Werbung" in task["result"]["concatenated_text"]


def test_translation_to_english(api: httpx.Client, media_server: MediaServer) -> None:
    r = api.post(
        "/streaming/ai/tasks", json={"url": media_server.url("sr_french.aiff"), "subtitles_language": "eng"}
    )
    task = wait_for(api, r.json()["task_id"])
    assert task["status"] == "SUCCESS", task
    assert task["result"]["languages"] == ["fre", "eng"]
    text = task["result"]["concatenated_text"].lower()
    assert "dictation" in text or "number one" in text, text


def test_unsupported_translation_fails_with_reason(api: httpx.Client, media_server: MediaServer) -> None:
    r = api.post(
        "/streaming/ai/tasks",
        json={"url": media_server.url("ldc93s1.wav"), "audio_language": "eng", "subtitles_language": "uzb"},
    )
    task = wait_for(api, r.json()["task_id"])
    assert task["status"] == "FAILURE"
    assert "English to Uzbek" in task["result"]["error"]


def test_silence_has_no_speech(api: httpx.Client, generated: MediaServer) -> None:
    r = api.post(
        "/streaming/ai/tasks", json={"task_name": "transcription", "url": generated.url("silence.wav")}
    )
    task = wait_for(api, r.json()["task_id"])
    assert task["status"] == "SUCCESS", task
    assert task["result"]["speech_detected"] is False
    assert task["result"]["subtitles"] == []
    assert task["result"]["vttContent"] == "WEBVTT\n\n"
    assert task["result"]["concatenated_text"] == ""


# --- bad input ends as FAILURE with a clear reason ----------------------------------------------------
BAD_MEDIA = [
    ("watch?v=dQw4w9WgXcQ", "HTML page"),
    ("missing.mp4", "404"),
    ("noaudio.mp4", "no audio"),
    ("truncated.mp4", "damaged"),
    ("playlist.mp4", "playlist"),
    ("notes.mp4", "not a"),
]


@pytest.mark.parametrize(("name", "fragment"), BAD_MEDIA)
def test_bad_media_fails_cleanly(api: httpx.Client, generated: MediaServer, name: str, fragment: str) -> None:
    r = api.post("/streaming/ai/tasks", json={"task_name": "transcription", "url": generated.url(name)})
    assert r.status_code == 201, r.text
    task = wait_for(api, r.json()["task_id"])
    assert task["status"] == "FAILURE", task
    assert fragment.lower() in task["result"]["error"].lower(), task["result"]
    assert task["processing_time"]["completed_at"] is not None


def test_failed_tasks_leave_no_files(tmp_path: Path, generated: MediaServer) -> None:
    """Tasks that fail inside their workspace (refused downloads, damaged or silent media) leave
    nothing in the work directory; on a service of its own, so no other test's tasks count."""
    svc = start_service(tmp_path / "svc")
    work = svc.data_dir / "work"
    try:
        before = sorted(work.iterdir()) if work.exists() else []
        with httpx.Client(base_url=svc.base_url, headers=svc.headers(), timeout=30) as c:
            urls = [generated.url(name) for name, _ in BAD_MEDIA]
            ids = [c.post("/streaming/ai/tasks", json={"url": url}).json()["task_id"] for url in urls]
            tasks = [wait_for(c, task_id) for task_id in ids]
        after = sorted(work.iterdir()) if work.exists() else []
    finally:
        stop_service(svc)
    assert [t["status"] for t in tasks] == ["FAILURE"] * len(BAD_MEDIA), tasks
    assert after == before


# --- cancel ---------------------------------------------------------------------------------------------
def test_cancel_stops_a_running_task(
    sdk: Gcore, api: httpx.Client, media_server: MediaServer, service: Service
) -> None:
    source = "endless/multilingual_en_de.mp3?cancel"
    created = sdk.streaming.ai_tasks.create(task_name="transcription", url=media_server.url(source))
    wait_for(api, created.task_id, until=("STARTED",), timeout=60)
    # cancelled while its download is under way (the source never ends by itself)
    eventually(lambda: (t := media_server.transfer(source)) and t.sent, timeout=60, what="download started")
    assert sdk.streaming.ai_tasks.cancel(created.task_id).result == "Task has been cancelled successfully."
    task = sdk.streaming.ai_tasks.get(created.task_id)
    assert task.status == "REVOKED"
    # The worker really stopped: it hung up on the endless download, the next task runs (the one
    # worker would otherwise be busy with the download for 10 minutes), the revoked task stays revoked.
    transfer = eventually(
        lambda: (t := media_server.transfer(source)) and t.closed_by_client and t,
        timeout=60,
        what="the worker hanging up on the cancelled download",
    )
    assert transfer.closed_by_client
    nxt = sdk.streaming.ai_tasks.create(task_name="transcription", url=media_server.url("ldc93s1.wav"))
    assert wait_for(api, nxt.task_id, timeout=60)["status"] == "SUCCESS"
    assert sdk.streaming.ai_tasks.get(created.task_id).status == "REVOKED"
    with pytest.raises(gcore.APIStatusError) as err:
        sdk.streaming.ai_tasks.cancel(created.task_id)
    assert err.value.status_code == 412
    assert "already in status REVOKED" in err.value.response.json()["error"]
    with sqlite3.connect(service.data_dir / "vodscribe.db") as db:
        (attempts,) = db.execute("select attempts from ai_tasks where id = ?", (created.task_id,)).fetchone()
    assert attempts == 1


def test_cancel_finished_and_unknown(sdk: Gcore, api: httpx.Client, media_server: MediaServer) -> None:
    created = sdk.streaming.ai_tasks.create(task_name="transcription", url=media_server.url("ldc93s1.wav"))
    assert wait_for(api, created.task_id)["status"] == "SUCCESS"
    r = api.post(f"/streaming/ai/tasks/{created.task_id}/cancel")
    assert r.status_code == 412
    assert r.json() == {"error": "Cannot cancel task because it is already in status SUCCESS."}
    r = api.post("/streaming/ai/tasks/00000000-0000-0000-0000-000000000000/cancel")
    assert r.status_code == 404
    assert r.json() == {"error": "Task not found"}


# --- list, filters, pagination, isolation ------------------------------------------------------------
def test_list_filters_and_pagination(
    sdk: Gcore, api: httpx.Client, media_server: MediaServer, service: Service
) -> None:
    key = service.new_key("lister")
    other = Gcore(api_key=key, base_url=service.base_url, max_retries=0)
    ids = [
        other.streaming.ai_tasks.create(task_name="transcription", url=media_server.url(name)).task_id
        for name in ("ldc93s1.wav", "sr_chinese.flac", "missing-1.mp4")
    ]
    with httpx.Client(base_url=service.base_url, headers=service.headers(key)) as c:
        for task_id in ids:
            wait_for(c, task_id)
        page1 = c.get("/streaming/ai/tasks", params={"limit": 2}).json()
        assert page1["count"] == 3 and page1["next"] == "page=2" and page1["previous"] is None
        assert len(page1["results"]) == 2 and "result" not in page1["results"][0]
        page2 = c.get("/streaming/ai/tasks", params={"limit": 2, "page": 2}).json()
        assert page2["next"] is None and page2["previous"] == "page=1" and len(page2["results"]) == 1
        past = c.get("/streaming/ai/tasks", params={"limit": 2, "page": 5})
        assert past.status_code == 200 and past.json()["results"] == []
        failed = c.get("/streaming/ai/tasks", params={"status": "FAILURE"}).json()
        assert [t["task_id"] for t in failed["results"]] == [ids[2]]
        found = c.get("/streaming/ai/tasks", params={"search": "CHINESE"}).json()
        assert [t["task_id"] for t in found["results"]] == [ids[1]]
        by_id = c.get("/streaming/ai/tasks", params={"task_id": ids[0]}).json()
        assert by_id["count"] == 1
        today = time.strftime("%Y-%m-%d", time.gmtime())
        assert c.get("/streaming/ai/tasks", params={"date_created": today}).json()["count"] == 3
        assert c.get("/streaming/ai/tasks", params={"date_created": "2001-01-01"}).json()["count"] == 0
        asc = c.get("/streaming/ai/tasks", params={"ordering": "task_id"}).json()["results"]
        assert [t["task_id"] for t in asc] == sorted(ids)
        desc = c.get("/streaming/ai/tasks", params={"ordering": "-task_id"}).json()["results"]
        assert [t["task_id"] for t in desc] == sorted(ids, reverse=True)
        assert c.get("/streaming/ai/tasks", params={"ordering": "nope"}).status_code == 400
    # the SDK's auto-pagination walks every page and stops on the empty one
    assert sorted(t.task_id for t in other.streaming.ai_tasks.list(limit=1)) == sorted(ids)
    # another client sees none of them
    mine = {t.task_id for t in sdk.streaming.ai_tasks.list(limit=100)}
    assert not mine & set(ids)
    for task_id in ids:
        assert api.get(f"/streaming/ai/tasks/{task_id}").status_code == 404
        assert api.post(f"/streaming/ai/tasks/{task_id}/cancel").status_code == 404


def test_language_support_info(sdk: Gcore) -> None:
    info = sdk.streaming.ai_tasks.get_ai_settings
    assert info(type="language_support", audio_language="ger").supported is True
    assert info(type="language_support", audio_language="fre", subtitles_language="eng").supported is True
    assert info(type="language_support", audio_language="uzb", subtitles_language="eng").supported is True
    # other targets follow the backends installed: the bundled LLM's languages (not Uzbek)
    assert info(type="language_support", audio_language="eng", subtitles_language="fre").supported is True
    assert info(type="language_support", audio_language="ger", subtitles_language="chi").supported is True
    assert info(type="language_support", audio_language="eng", subtitles_language="uzb").supported is False
    assert info(type="language_support", audio_language="uzb", subtitles_language="fre").supported is False
    assert info(type="language_support", audio_language="xxx").supported is False


def test_progress_and_result_shape_while_running(api: httpx.Client, media_server: MediaServer) -> None:
    r = api.post("/streaming/ai/tasks", json={"url": media_server.url("slow/ldc93s1.wav")})
    body = api.get(f"/streaming/ai/tasks/{r.json()['task_id']}").json()
    assert body["status"] in ("PENDING", "STARTED")
    assert "result" not in body
    assert (
        body["processing_time"]["completed_at"] is None and body["processing_time"]["total_time_sec"] is None
    )
    assert wait_for(api, body["task_id"])["status"] == "SUCCESS"


def test_docs_are_served(service: Service) -> None:
    spec = httpx.get(service.base_url + "/openapi.json").json()
    assert "/streaming/ai/tasks" in spec["paths"]
    assert httpx.get(service.base_url + "/docs").status_code == 200


def test_work_dir_is_clean_after_all(service: Service) -> None:
    work: Path = service.data_dir / "work"
    assert not work.exists() or not any(work.iterdir())
