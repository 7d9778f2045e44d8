"""Running an AI task in a worker: claim it, fetch, transcribe, store the result.

Every write is conditional on the task still being ours (``status = STARTED`` and our attempt), so a
task cancelled or re-dispatched meanwhile is never overwritten. A heartbeat thread keeps
``heartbeat_at`` fresh (the reaper re-dispatches tasks whose heartbeat stops) and watches for REVOKED.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vodscribe import languages
from vodscribe.config import Settings
from vodscribe.db.models import AITask, Rendition, Subtitle, Video, utcnow
from vodscribe.db.session import session_scope
from vodscribe.engines.whisper import engine_for
from vodscribe.pipeline.errors import Cancelled, MediaError
from vodscribe.pipeline.fetch import download
from vodscribe.pipeline.render import to_subtitles_json, to_vtt
from vodscribe.pipeline.segment import concatenated_text
from vodscribe.pipeline.transcription import Transcript, transcribe_file
from vodscribe.pipeline.translate import require
from vodscribe.queue import dispatch_transcription
from vodscribe.services.heartbeat import Heartbeat
from vodscribe.services.subtitles import ai_subtitle_name, publish
from vodscribe.services.translation import translators_for
from vodscribe.storage.media import media_store
from vodscribe.storage.workspace import workspace

log = logging.getLogger(__name__)

FETCH_SHARE = 0.15  # progress 0-15 % is the download, the rest is transcription
CLAIMABLE = ("RECEIVED", "PENDING", "RETRY")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Claim:
    task_id: str
    attempt: int
    task_data: dict[str, Any]
    progress: int
    video_id: int | None = None
    attach_subtitle: bool = False


def claim(settings: Settings, task_id: str) -> Claim | None:
    """STARTED + attempt number, or None when the task is not ours to run (done, cancelled, running).

    A task STARTED by a worker whose heartbeat went stale is taken over too: that is the broker
    redelivering the message of a worker that died (acks_late), ahead of the reaper."""
    with session_scope(settings.db_url) as s:
        task = s.get(AITask, task_id)
        if task is None:
            return None
        now = utcnow()
        stale = now - timedelta(seconds=settings.stale_after_s)
        orphaned = task.status == "STARTED" and task.heartbeat_at is not None and task.heartbeat_at < stale
        if task.status not in CLAIMABLE and not orphaned:
            return None
        if orphaned and task.attempts >= settings.max_attempts:
            return None  # the reaper fails it with a reason
        attempt = task.attempts + 1
        if orphaned:  # still exactly as the dead worker left it
            ours = (
                AITask.status == "STARTED",
                AITask.attempts == task.attempts,
                AITask.heartbeat_at == task.heartbeat_at,
            )
        else:  # RECEIVED may turn PENDING meanwhile (the API marks it after sending): both are fine
            ours = (AITask.status.in_(CLAIMABLE), AITask.attempts == task.attempts)
        changed = s.execute(
            update(AITask)
            .where(AITask.id == task_id, *ours)
            .values(
                status="STARTED",
                attempts=attempt,
                started_at=task.started_at or now,
                heartbeat_at=now,
                worker=worker_name(),
                progress=max(task.progress, 1),
            )
        ).rowcount
        if not changed:
            return None
        if orphaned:
            log.warning("task %s: taking over from lost worker %s", task_id, task.worker)
        return Claim(
            task_id, attempt, dict(task.task_data), max(task.progress, 1), task.video_id, task.attach_subtitle
        )


class Watcher(Heartbeat):
    """Heartbeat, progress and cancel detection for an AI task (see :class:`Heartbeat`)."""

    def __init__(self, settings: Settings, claim: Claim) -> None:
        super().__init__(f"watch-{claim.task_id}", min(1.0, settings.heartbeat_s))
        self.settings = settings
        self.claim = claim
        self._progress: int | None = None
        self._highest = claim.progress
        self._lock = threading.Lock()
        self._next_beat = time.monotonic() + settings.heartbeat_s  # claim() wrote the first beat

    def set_progress(self, percent: int) -> None:
        """Record progress; it never goes backwards (a retried attempt starts from the top again)."""
        with self._lock:
            if percent > self._highest:
                self._highest = percent
                self._progress = percent

    def _take_progress(self) -> int | None:
        with self._lock:
            progress, self._progress = self._progress, None
        return progress

    def tick(self) -> bool:
        beat = time.monotonic() >= self._next_beat
        progress = self._take_progress()
        with session_scope(self.settings.db_url) as s:
            values: dict[str, Any] = {}
            if beat:
                values["heartbeat_at"] = utcnow()
            if progress is not None:
                values["progress"] = progress
            if values:
                s.execute(_ours(self.claim).values(**values))
            status = s.scalar(select(AITask.status).where(AITask.id == self.claim.task_id))
        if beat:
            self._next_beat = time.monotonic() + self.settings.heartbeat_s
        return status == "STARTED"

    def finish(self) -> None:
        progress = self._take_progress()
        if progress is not None:
            with session_scope(self.settings.db_url) as s:
                s.execute(_ours(self.claim).values(progress=progress))


def _ours(claim: Claim) -> Any:
    return update(AITask).where(
        AITask.id == claim.task_id, AITask.status == "STARTED", AITask.attempts == claim.attempt
    )


def run_task(settings: Settings, task_id: str) -> str:
    """Run one task to SUCCESS/FAILURE (or leave it REVOKED). Returns the final status seen."""
    claimed = claim(settings, task_id)
    if claimed is None:
        log.info("task %s is not claimable; skipping", task_id)
        return "SKIPPED"
    with Watcher(settings, claimed) as watcher:
        try:
            result = _execute(settings, claimed, watcher)
        except Cancelled:
            log.info("task %s cancelled", task_id)
            return "REVOKED"
        except MediaError as exc:
            return _finish(settings, claimed, "FAILURE", {"error": exc.message})
        except Exception as exc:
            log.exception("task %s failed with an internal error", task_id)
            return _retry_or_fail(settings, claimed, exc)
    return _finish(settings, claimed, "SUCCESS", result)


def _execute(settings: Settings, claimed: Claim, watcher: Watcher) -> dict[str, Any]:
    data = claimed.task_data
    audio_language = _lang(data.get("audio_language"))
    target = _lang(data.get("subtitles_language"))
    translators = translators_for(settings)
    if target is not None and audio_language is not None and audio_language is not target:
        require(translators, audio_language, target)  # a pair known up front fails before any download
    engine = engine_for(settings)
    with workspace(settings.work_dir, claimed.task_id) as tmp:

        def on_bytes(done: int, total: int | None) -> None:
            if total:
                watcher.set_progress(max(1, int(100 * FETCH_SHARE * done / total)))

        if claimed.video_id is not None:
            source = _video_source(settings, claimed.video_id, tmp)
        else:
            source = download(
                data["url"],
                tmp / "source",
                settings=settings,
                on_progress=on_bytes,
                should_stop=watcher.stopped,
            ).path
        watcher.set_progress(int(100 * FETCH_SHARE))
        transcript = transcribe_file(
            source,
            engine,
            language=audio_language.whisper if audio_language else None,
            target=target,
            translators=translators,
            on_progress=lambda f: watcher.set_progress(
                int(100 * (FETCH_SHARE + (1 - FETCH_SHARE) * f * 0.99))
            ),
            should_stop=watcher.stopped,
        )
    if transcript.translated_by:
        log.info("task %s translated by %s", claimed.task_id, ", ".join(transcript.translated_by))
    return build_result(transcript, audio_language, target)


def _video_source(settings: Settings, video_id: int, scratch: Path) -> Path:
    """A hosted video's lowest complete rendition, read from storage instead of over HTTP."""
    with session_scope(settings.db_url) as s:
        video = s.get(Video, video_id)
        rendition = s.scalars(
            select(Rendition)
            .where(Rendition.video_id == video_id, Rendition.status == "complete")
            .order_by(Rendition.height)
        ).first()
        if video is None or rendition is None:
            raise MediaError("The video was deleted or has no transcoded rendition.")
        key, filename = video.key, rendition.filename
    path = media_store(settings).fetch(key, filename, scratch)
    if path is None:
        raise MediaError("The video's rendition file is missing.")
    return path


def _lang(code: object) -> languages.Language | None:
    return languages.resolve(code) if isinstance(code, str) and code else None


def build_result(
    transcript: Transcript, audio: languages.Language | None, target: languages.Language | None
) -> dict[str, Any]:
    """The Gcore ``ai_results_transcribe`` object."""
    spoken = [languages.from_whisper(c).b for c in transcript.languages]
    codes = [audio.b] if audio is not None else spoken
    if target is not None and target.b not in codes:
        codes = [*codes, target.b]
    cues = list(transcript.cues)
    return {
        "subtitles": to_subtitles_json(cues),
        "vttContent": to_vtt(cues),
        "concatenated_text": concatenated_text(cues),
        "languages": codes[:5],
        "speech_detected": transcript.speech_detected,
    }


def _finish(settings: Settings, claimed: Claim, status: str, result: dict[str, Any]) -> str:
    """Store the outcome if the task is still ours; a video's subtitle is attached in the same commit."""
    attached = False
    with session_scope(settings.db_url) as s:
        changed = s.execute(
            _ours(claimed).values(status=status, result=result, progress=100, completed_at=utcnow())
        ).rowcount
        if not changed:
            return s.scalar(select(AITask.status).where(AITask.id == claimed.task_id)) or "GONE"
        if status == "SUCCESS" and claimed.attach_subtitle:
            attached = _attach(s, claimed, result)
    if attached:
        with session_scope(settings.db_url) as s:
            video = s.get(Video, claimed.video_id)
            if video is not None:
                publish(settings, s, video)
    return status


def _attach(session: Session, claimed: Claim, result: dict[str, Any]) -> bool:
    named = ai_subtitle_name(claimed.task_data, result)
    if named is None or session.get(Video, claimed.video_id) is None:
        return False
    name, language = named
    session.add(
        Subtitle(
            video_id=claimed.video_id,
            name=name,
            language=language,
            vtt=result["vttContent"],
            ai_task_id=claimed.task_id,
        )
    )
    return True


def _retry_or_fail(settings: Settings, claimed: Claim, exc: Exception) -> str:
    if claimed.attempt >= settings.max_attempts:
        return _finish(
            settings,
            claimed,
            "FAILURE",
            {"error": f"Internal error after {claimed.attempt} attempts ({type(exc).__name__})."},
        )
    with session_scope(settings.db_url) as s:
        changed = s.execute(_ours(claimed).values(status="RETRY", heartbeat_at=None)).rowcount
    if changed:
        dispatch_transcription(settings, claimed.task_id, countdown=2.0 * claimed.attempt)
        return "RETRY"
    return "GONE"
