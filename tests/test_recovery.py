"""No task is lost or left hanging in STARTED: worker crashes, server restarts, stale tasks."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import imageio_ffmpeg
import pytest

from tests.conftest import MediaServer, Service, start_service, stop_service, wait_for
from tests.waiting import eventually
from vodscribe.config import Settings
from vodscribe.db.session import migrate, session_scope
from vodscribe.db.tables import AITask, Video, utcnow
from vodscribe.services.clients import create_client
from vodscribe.services.video_sources import SOURCE
from vodscribe.storage.video_files import media_store
from vodscribe.worker.ai_task_runner import claim, run_task
from vodscribe.worker.reaper import reap


def _row(service: Service, task_id: str) -> tuple[str, int, str]:
    with sqlite3.connect(service.data_dir / "vodscribe.db") as db:
        return db.execute("select status, attempts, worker from ai_tasks where id = ?", (task_id,)).fetchone()


@pytest.mark.slow  # a vodscribe serve whose worker loads Whisper
def test_worker_killed_mid_task_is_recovered(
    service: Service, api: httpx.Client, media_server: MediaServer
) -> None:
    r = api.post("/streaming/ai/tasks", json={"url": media_server.url("slow/multilingual_en_de.mp3")})
    task_id = r.json()["task_id"]
    wait_for(api, task_id, until=("STARTED",), timeout=60)
    status, attempts, worker = _row(service, task_id)
    assert (status, attempts) == ("STARTED", 1)
    os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)
    # serve restarts its worker; the reaper sees the stale heartbeat and re-dispatches the task
    progress = []

    def finished() -> dict:
        task = api.get(f"/streaming/ai/tasks/{task_id}").json()
        if task["status"] not in ("SUCCESS", "FAILURE"):
            progress.append(task["progress"])
        assert task["status"] in ("SUCCESS", "FAILURE"), task
        return task

    task = eventually(finished, timeout=120, interval=0.2, what=f"task {task_id} finished")
    assert progress == sorted(progress), "progress never goes backwards, not even on the second attempt"
    assert task["status"] == "SUCCESS", task
    assert task["result"]["languages"] == ["eng", "ger"]
    status, attempts, new_worker = _row(service, task_id)
    assert attempts == 2 and new_worker != worker


@pytest.mark.slow  # a vodscribe serve whose worker loads Whisper
def test_server_restart_loses_nothing(tmp_path: Path, media_server: MediaServer) -> None:
    svc = start_service(tmp_path)
    try:
        with httpx.Client(base_url=svc.base_url, headers=svc.headers()) as c:
            ids = [
                c.post("/streaming/ai/tasks", json={"url": media_server.url(f"slow/{name}")}).json()[
                    "task_id"
                ]
                for name in ("ldc93s1.wav", "sr_french.aiff", "sr_chinese.flac")
            ]
    finally:
        stop_service(svc)
    svc = start_service(tmp_path)
    try:
        with httpx.Client(base_url=svc.base_url, headers=svc.headers()) as c:
            results = [wait_for(c, task_id, timeout=120) for task_id in ids]
    finally:
        stop_service(svc)
    assert [t["status"] for t in results] == ["SUCCESS"] * 3, results
    assert [t["result"]["languages"] for t in results] == [["eng"], ["fre"], ["chi"]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path, stale_after_s=30, max_attempts=3)
    migrate(s.db_url)
    return s


def _task(settings: Settings, **values: object) -> str:
    with session_scope(settings.db_url) as s:
        client, _ = create_client(s, "c")
        task = AITask(client_id=client.id, task_data={"url": "https://93.184.215.14/a.mp4"}, **values)
        s.add(task)
        s.flush()
        return task.id


def _status(settings: Settings, task_id: str) -> AITask:
    with session_scope(settings.db_url) as s:
        task = s.get(AITask, task_id)
        assert task is not None
        return task


def test_reaper_redispatches_stale_started_task(settings: Settings) -> None:
    old = utcnow() - timedelta(seconds=120)
    stale = _task(settings, status="STARTED", attempts=1, heartbeat_at=old, started_at=old)
    fresh = _task(settings, status="STARTED", attempts=1, heartbeat_at=utcnow(), started_at=old)
    worn_out = _task(settings, status="STARTED", attempts=3, heartbeat_at=old, started_at=old)
    unsent = _task(settings, status="RECEIVED", created_at=old)
    queued = _task(settings, status="PENDING", created_at=old)  # waiting in the queue: leave it
    lost = _task(settings, status="PENDING", created_at=utcnow() - timedelta(seconds=400))
    assert sorted(reap(settings)) == sorted([stale, unsent, lost])
    assert _status(settings, queued).status == "PENDING"
    assert _status(settings, lost).status == "PENDING"
    assert _status(settings, stale).status == "RETRY"
    assert _status(settings, fresh).status == "STARTED"
    failed = _status(settings, worn_out)
    assert failed.status == "FAILURE" and "stopped 3 times" in failed.result["error"]
    assert failed.completed_at is not None
    assert _status(settings, unsent).status == "PENDING"
    messages = "".join(p.read_text() for p in (settings.broker_dir / "queue").iterdir())
    assert stale in messages and unsent in messages and lost in messages and worn_out not in messages
    # a second pass right away changes nothing
    assert reap(settings) == []


def test_reaper_recovers_video_jobs(settings: Settings) -> None:
    old = utcnow() - timedelta(seconds=120)
    with session_scope(settings.db_url) as s:
        client, _ = create_client(s, "v")

        def video(slug: str, state: str, attempts: int, beat: datetime) -> Video:
            return Video(
                client_id=client.id,
                slug=slug,
                name=slug,
                job_state=state,
                job_attempts=attempts,
                heartbeat_at=beat,
            )

        rows = {
            "dead": video("a", "running", 1, old),
            "alive": video("b", "running", 1, utcnow()),
            "worn": video("c", "running", 3, old),
            "lost": video("d", "queued", 0, utcnow() - timedelta(seconds=400)),
        }
        s.add_all(rows.values())
        s.flush()
        ids = {k: v.id for k, v in rows.items()}
    reap(settings)
    with session_scope(settings.db_url) as s:
        state = {k: (s.get(Video, i).job_state, s.get(Video, i).status) for k, i in ids.items()}
    assert state["dead"] == ("queued", "empty")
    assert state["alive"] == ("running", "empty")
    assert state["worn"] == ("done", "error")
    assert state["lost"] == ("queued", "empty")
    messages = "".join(p.read_text() for p in (settings.broker_dir / "queue").iterdir())
    assert messages.count("vodscribe.process_video") == 2  # dead + lost, each sent once


def test_reaper_deletes_a_kept_origin_that_nothing_needs(settings: Settings, tmp_path: Path) -> None:
    """A worker that died between its task's end and deleting the video's kept origin leaves it
    behind: the reaper deletes it, but not one that an unfinished task still reads."""
    with session_scope(settings.db_url) as s:
        client, _ = create_client(s, "v")
        videos = {
            name: Video(client_id=client.id, slug=name, name=name, status="ready", job_state="done",
                        asr_source=SOURCE)
            for name in ("ended", "busy")
        }  # fmt: skip
        s.add_all(videos.values())
        s.flush()
        s.add_all(
            [
                AITask(client_id=client.id, task_data={}, status="SUCCESS", video_id=videos["ended"].id),
                AITask(client_id=client.id, task_data={}, status="STARTED", attempts=1,
                       heartbeat_at=utcnow(), video_id=videos["busy"].id),
            ]
        )  # fmt: skip
        ids = {name: (v.id, v.key) for name, v in videos.items()}
    origin = tmp_path / "origin.mp4"
    origin.write_bytes(b"\0" * 1024)
    for _, key in ids.values():
        media_store(settings).put_file(key, SOURCE, origin)
    reap(settings)
    kept = {name: (settings.data_dir / "videos" / key / SOURCE).exists() for name, (_, key) in ids.items()}
    assert kept == {"ended": False, "busy": True}
    with session_scope(settings.db_url) as s:
        assert {name: s.get(Video, i).asr_source for name, (i, _) in ids.items()} == {
            "ended": None,
            "busy": SOURCE,
        }


def test_a_retry_whose_message_is_lost_is_sent_again(tmp_path: Path) -> None:
    """An internal error puts the task back on the queue; if that message cannot be sent (the broker
    is down), the reaper sends it once the retry is overdue instead of leaving it RETRY forever."""
    settings = Settings(data_dir=tmp_path, stale_after_s=1, max_attempts=3)
    migrate(settings.db_url)
    with session_scope(settings.db_url) as s:
        client, _ = create_client(s, "c")
        # An unknown language code in stored task data is a bug, not the user's problem: retried.
        task = AITask(
            client_id=client.id, status="PENDING", task_data={"url": "x", "subtitles_language": "?"}
        )
        s.add(task)
        s.flush()
        task_id = task.id
    settings.broker_dir.mkdir(parents=True)
    (settings.broker_dir / "queue").write_text("not a folder")  # the filesystem broker cannot start
    assert run_task(settings, task_id) == "RETRY"
    retried = _status(settings, task_id)
    assert retried.status == "RETRY" and retried.attempts == 1 and retried.heartbeat_at is not None
    assert reap(settings) == [], "not overdue yet"
    (settings.broker_dir / "queue").unlink()  # the broker is back
    eventually(lambda: task_id in reap(settings), timeout=30, what="the retry sent again")
    messages = "".join(p.read_text() for p in (settings.broker_dir / "queue").iterdir())
    assert task_id in messages
    assert _status(settings, task_id).status == "RETRY"  # a worker claims it from there


def test_claim_takes_over_only_orphaned_tasks(settings: Settings) -> None:
    old = utcnow() - timedelta(seconds=120)
    orphan = _task(settings, status="STARTED", attempts=1, heartbeat_at=old, started_at=old)
    running = _task(settings, status="STARTED", attempts=1, heartbeat_at=utcnow(), started_at=old)
    pending = _task(settings, status="PENDING")
    worn_out = _task(settings, status="STARTED", attempts=3, heartbeat_at=old, started_at=old)
    taken = claim(settings, orphan)
    assert taken is not None and taken.attempt == 2
    assert claim(settings, orphan) is None, "now it is ours, not orphaned"
    assert claim(settings, running) is None
    assert claim(settings, worn_out) is None
    first = claim(settings, pending)
    assert first is not None and first.attempt == 1
    assert _status(settings, orphan).started_at == old, "started_at keeps the first start"


@pytest.mark.slow  # a vodscribe serve whose worker loads Whisper
def test_worker_killed_mid_transcode_video_still_becomes_ready(
    service: Service, api: httpx.Client, media_server: MediaServer
) -> None:
    source = media_server.root / "long-720p.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi",
         "-i", "testsrc2=size=1280x720:rate=30:duration=20", "-c:v", "libx264", "-preset", "ultrafast",
         "-pix_fmt", "yuv420p", str(source)],
        check=True,
    )  # fmt: skip
    body = {
        "name": "killed",
        "origin_url": media_server.url("long-720p.mp4"),
        "auto_transcribe_audio_language": "disable",
    }
    video_id = api.post("/streaming/videos", json=body).json()["id"]
    eventually(  # transcoding now
        lambda: api.get(f"/streaming/videos/{video_id}").json()["status"] == "pending",
        timeout=60,
        interval=0.1,
        what=f"video {video_id} pending",
    )
    with sqlite3.connect(service.data_dir / "vodscribe.db") as db:
        (worker,) = db.execute("select job_worker from videos where id = ?", (video_id,)).fetchone()
    os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)

    def done() -> dict:
        video = api.get(f"/streaming/videos/{video_id}").json()
        assert video["status"] in ("ready", "error"), video
        return video

    video = eventually(done, timeout=180, interval=0.5, what=f"video {video_id} ready")
    assert video["status"] == "ready", video
    assert [r["name"] for r in video["converted_videos"]] == ["vod240p", "vod360p", "vod480p"]
    assert all(r["status"] == "complete" for r in video["converted_videos"])
    with sqlite3.connect(service.data_dir / "vodscribe.db") as db:
        (attempts,) = db.execute("select job_attempts from videos where id = ?", (video_id,)).fetchone()
    assert attempts == 2
    assert httpx.get(video["hls_url"]).text.count("#EXT-X-STREAM-INF") == 3
