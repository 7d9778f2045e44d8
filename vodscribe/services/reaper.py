"""Recovery of tasks whose worker died or whose queue message was never sent.

Safe to run anywhere and often: every change is a conditional update, and a task dispatched twice is
claimed once (see ``processing.claim``).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from vodscribe.config import Settings
from vodscribe.db.models import AITask, Video, utcnow
from vodscribe.db.session import session_scope
from vodscribe.queue import dispatch_transcription, dispatch_video

log = logging.getLogger(__name__)


def reap(settings: Settings) -> list[str]:
    """Re-dispatch stale STARTED tasks (or fail them after ``max_attempts``) and unsent ones, and the
    same for video jobs. Returns the ids of the AI tasks that were sent again."""
    now = utcnow()
    stale = now - timedelta(seconds=settings.stale_after_s)
    for video_id in _reap_videos(settings, now, stale):
        try:
            dispatch_video(settings, video_id)
        except Exception:
            log.exception("could not re-dispatch video %s", video_id)
    sent = []
    for task_id in _reap_tasks(settings, now, stale):
        try:
            dispatch_transcription(settings, task_id)
            sent.append(task_id)
        except Exception:
            log.exception("could not re-dispatch task %s", task_id)
    if sent:
        with session_scope(settings.db_url) as s:
            s.execute(
                update(AITask)
                .where(AITask.id.in_(sent), AITask.status == "RECEIVED")
                .values(status="PENDING")
            )
    return sent


def _reap_tasks(settings: Settings, now: datetime, stale: datetime) -> list[str]:
    """AI tasks: a dead worker's task goes to RETRY (or FAILURE after max attempts); a task never sent,
    or sent and possibly lost (a broker restarted without persistence), is sent again. A duplicate
    message is harmless: only one worker can claim the task. Returns the ids to send."""
    resend: list[str] = []
    with session_scope(settings.db_url) as s:
        for task in s.scalars(select(AITask).where(AITask.status == "STARTED", AITask.heartbeat_at < stale)):
            ours = update(AITask).where(
                AITask.id == task.id, AITask.status == "STARTED", AITask.heartbeat_at == task.heartbeat_at
            )
            if task.attempts >= settings.max_attempts:
                s.execute(
                    ours.values(
                        status="FAILURE",
                        completed_at=now,
                        result={"error": f"The worker processing this task stopped {task.attempts} times."},
                    )
                )
                log.warning("task %s failed: worker lost %d times", task.id, task.attempts)
            elif s.execute(ours.values(status="RETRY", heartbeat_at=now)).rowcount:
                log.warning("task %s: worker %s lost, re-dispatching", task.id, task.worker)
                resend.append(task.id)
        waited = now - timedelta(seconds=settings.redispatch_after_s)
        last_sent = func.coalesce(AITask.heartbeat_at, AITask.created_at)
        lost = select(AITask.id).where(
            (AITask.status == "RECEIVED") & (AITask.created_at < stale)
            | (AITask.status == "RETRY") & (AITask.heartbeat_at < stale)
            | (AITask.status == "PENDING") & (last_sent < waited)
        )
        for task_id in list(s.scalars(lost)):
            s.execute(update(AITask).where(AITask.id == task_id).values(heartbeat_at=now))
            resend.append(task_id)
    return resend


def _reap_videos(settings: Settings, now: datetime, stale: datetime) -> list[int]:
    """Video jobs: a dead worker's run goes back to the queue (or fails after max attempts); a queued
    job whose message may be lost is sent again. Returns the ids to send."""
    waited = now - timedelta(seconds=settings.redispatch_after_s)
    resend: list[int] = []
    with session_scope(settings.db_url) as s:
        for video in s.scalars(select(Video).where(Video.job_state == "running", Video.heartbeat_at < stale)):
            ours = update(Video).where(
                Video.id == video.id, Video.job_state == "running", Video.heartbeat_at == video.heartbeat_at
            )
            if video.job_attempts >= settings.max_attempts:
                message = f"The worker processing this video stopped {video.job_attempts} times."
                s.execute(ours.values(job_state="done", status="error", error=message))
            elif s.execute(ours.values(job_state="queued", heartbeat_at=now)).rowcount:
                resend.append(video.id)
        lost = select(Video.id).where(Video.job_state == "queued", Video.heartbeat_at < waited)
        for video_id in list(s.scalars(lost)):
            s.execute(update(Video).where(Video.id == video_id).values(heartbeat_at=now))
            resend.append(video_id)
    return resend


class Reaper(threading.Thread):
    """Runs :func:`reap` every ``interval`` seconds until stopped."""

    def __init__(self, settings: Settings, interval: float | None = None) -> None:
        super().__init__(name="vodscribe-reaper", daemon=True)
        self.settings = settings
        self.interval = interval or max(1.0, settings.stale_after_s / 3)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            try:
                reap(self.settings)
            except Exception:
                log.exception("reaper pass failed")
            if self._stop_event.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop_event.set()
