"""A video's speech is recognised once, whatever the number of subtitle languages asked for: the
translations wait for the transcription and start from what it found, run side by side; each still
ends on its own."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import DATA, MediaServer, start_service, stop_service, wait_for
from tests.waiting import eventually
from vodscribe.config import Settings
from vodscribe.db.session import migrate, session_scope
from vodscribe.db.tables import AITask, utcnow
from vodscribe.engines.results import SpeechSegment, Word
from vodscribe.engines.whisper import Span
from vodscribe.services.clients import create_client
from vodscribe.speech.language_runs import LanguageRun
from vodscribe.speech.stored_recognition import Recognized
from vodscribe.worker.ai_task_runner import claim, claim_siblings
from vodscribe.worker.reaper import reap


def test_a_recognition_round_trips_through_json() -> None:
    words = (Word(0.5, 0.9, " Hello", 0.9), Word(1.0, 1.4, " world.", 0.8))
    seg = SpeechSegment(0.5, 1.4, " Hello world.", "en", words, -0.2, 0.01, 1.1)
    recognized = Recognized(((LanguageRun(Span(0.0, 2.0), "en", 1.4), (seg,)),))
    assert Recognized.from_json(recognized.to_json()) == recognized
    assert Recognized.from_json({**recognized.to_json(), "format": 0}) is None  # another format: unused


def test_a_waiting_translation_is_sent_only_once_its_transcription_ended(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, stale_after_s=30)
    migrate(settings.db_url)
    old = utcnow() - timedelta(seconds=120)
    with session_scope(settings.db_url) as s:
        client, _ = create_client(s, "c")
        first = AITask(client_id=client.id, status="STARTED", heartbeat_at=utcnow(), task_data={"url": "x"})
        s.add(first)
        s.flush()
        then = AITask(
            client_id=client.id,
            status="RECEIVED",
            created_at=old,
            after_task_id=first.id,
            task_data={"url": "x"},
        )
        s.add(then)
        s.flush()
        first_id, then_id = first.id, then.id
    assert reap(settings) == [], "its transcription is still running"
    with session_scope(settings.db_url) as s:
        done = s.get(AITask, first_id)
        assert done is not None
        done.status = "FAILURE"  # however it ended, the translation now runs on its own
    assert reap(settings) == [then_id]


def test_a_worker_takes_along_only_the_other_languages_released_with_its_task(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, translate_together=3)
    migrate(settings.db_url)
    with session_scope(settings.db_url) as s:
        a, _ = create_client(s, "a")
        b, _ = create_client(s, "b")
        first = AITask(client_id=a.id, status="SUCCESS", task_data={"url": "x"})
        s.add(first)
        s.flush()

        def task(client: int, status: str, code: str | None, after: str | None = first.id) -> str:
            row = AITask(
                client_id=client,
                status=status,
                heartbeat_at=utcnow(),
                after_task_id=after,
                task_data={"url": "x", "subtitles_language": code},
            )
            s.add(row)
            s.flush()
            return row.id

        mine = [task(a.id, "PENDING", code) for code in ("ger", "fre", "spa", "ita")]
        running = task(a.id, "STARTED", "rus")  # another worker runs it
        foreign = task(b.id, "PENDING", "ger")  # cannot happen; never taken even so
        alone = task(a.id, "PENDING", "ger", after=None)  # asked for on its own
    claimed = claim(settings, mine[0])
    assert claimed is not None
    taken = claim_siblings(settings, claimed)
    assert [c.task_id for c in taken] == mine[1:3]  # up to translate_together - 1, oldest first
    with session_scope(settings.db_url) as s:
        status = {t.id: t.status for t in s.query(AITask)}
    assert [status[t] for t in mine] == ["STARTED", "STARTED", "STARTED", "PENDING"]
    assert (status[running], status[foreign], status[alone]) == ("STARTED", "PENDING", "PENDING")
    # A worker told to run them one after another takes nothing along.
    first_claim = claim(settings, mine[3])
    assert first_claim is not None
    assert claim_siblings(settings.model_copy(update={"translate_together": 1}), first_claim) == []


@pytest.mark.slow  # a real service: Whisper and the translation LLM load
def test_a_video_with_three_targets_recognises_its_speech_once(
    tmp_path: Path, media_server: MediaServer
) -> None:
    svc = start_service(tmp_path / "svc", {"VODSCRIBE_TRANSLATION_BACKENDS": "llm,whisper"})
    try:
        with httpx.Client(base_url=svc.base_url, headers=svc.headers(), timeout=30) as api:
            created = api.post(
                "/streaming/videos",
                json={
                    "video": {
                        "name": "jfk",
                        "origin_url": media_server.url("jfk_librivox.mp4"),
                        "auto_transcribe_audio_language": "auto",
                        "auto_translate_subtitles_language": "fre,ger,uzb",
                    }
                },
            ).json()

            def four_tasks() -> list[dict]:
                listed = api.get("/streaming/ai/tasks", params={"limit": 100}).json()["results"]
                assert len(listed) == 4, listed
                return listed

            listed = eventually(four_tasks, timeout=180, what="the video's 4 AI tasks")
            tasks = {
                t["task_data"].get("subtitles_language"): wait_for(api, t["task_id"], timeout=300)
                for t in listed
            }
            assert tasks[None]["status"] == "SUCCESS" and tasks[None]["result"]["languages"] == ["eng"]
            assert tasks["fre"]["status"] == "SUCCESS" and tasks["ger"]["status"] == "SUCCESS"
            assert tasks["uzb"]["status"] == "FAILURE"  # no backend here translates into Uzbek: alone
            assert "Uzbek is not supported" in tasks["uzb"]["result"]["error"]
            german = tasks["ger"]["result"]["concatenated_text"].lower()
            assert "land" in german or "amerika" in german, german

            def three_subtitles() -> list[dict]:
                subs = api.get(f"/streaming/videos/{created['id']}/subtitles").json()
                assert len(subs) == 3, subs
                return subs

            names = sorted(s["name"] for s in eventually(three_subtitles, timeout=60, what="3 subtitles"))
            assert names == ["English (AI-generated)", "French (AI-translated)", "German (AI-translated)"]
    finally:
        stop_service(svc)
    log = (tmp_path / "svc" / "serve.log").read_text()
    # faster-whisper logs this once per recognition it runs: once for the video, not four times
    assert log.count("Processing audio with duration") == 1, log.count("Processing audio with duration")
    assert log.count("reusing the recognition of this file") == 3
    # The three subtitle languages ran side by side (their translations decoded together), and the
    # messages of the two taken along found them taken.
    assert log.count("running 3 tasks of the video together") == 1, log
    assert log.count("is not claimable; skipping") >= 2
    assert (DATA / "jfk_librivox.mp4").exists()
