"""Recovery of jobs (and webhook deliveries) whose worker died or whose queue message was never sent.

Safe to run anywhere and often: every change is a conditional update, and a job dispatched twice is
claimed once (the rules are :mod:`vodscribe.worker.jobs`'s, the same for AI tasks and videos).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from vodscribe.config import Settings
from vodscribe.db.session import session_scope
from vodscribe.db.statuses import TaskStatus
from vodscribe.db.tables import AITask, utcnow
from vodscribe.queue import dispatch_transcription, dispatch_video
from vodscribe.services import task_uploads, uploads, video_sources, webhooks
from vodscribe.worker import jobs, recognition_cache, webhook_delivery
from vodscribe.worker.jobs import AI_TASKS, VIDEO_JOBS

log = logging.getLogger(__name__)


def reap(settings: Settings) -> list[str]:
    """Send again what a dead worker left (or fail it after ``max_attempts``) and what may never have
    reached the queue, for video jobs and AI tasks. Returns the ids of the AI tasks sent again."""
    now = utcnow()
    stale = now - timedelta(seconds=settings.stale_after_s)
    waited = now - timedelta(seconds=settings.redispatch_after_s)
    resend: dict[jobs.JobKind, list[object]] = {}
    ended: dict[jobs.JobKind, Callable[[Session, Any], None]] = {
        VIDEO_JOBS: lambda s, video_id: webhooks.record_video(s, settings, video_id),
        AI_TASKS: lambda s, task_id: webhooks.record_task(s, settings, task_id),
    }
    with session_scope(settings.db_url) as s:
        for kind in (VIDEO_JOBS, AI_TASKS):
            stale_ids = jobs.reap_stale(
                s, kind, now=now, stale=stale, max_attempts=settings.max_attempts, ended=ended[kind]
            )
            lost_ids = jobs.reap_lost(s, kind, now=now, stale=stale, waited=waited)
            resend[kind] = [*stale_ids, *lost_ids]
    jobs.send_all(VIDEO_JOBS, resend[VIDEO_JOBS], lambda video_id: dispatch_video(settings, video_id))
    sent = jobs.send_all(
        AI_TASKS, resend[AI_TASKS], lambda task_id: dispatch_transcription(settings, task_id)
    )
    recognition_cache.prune(settings)
    video_sources.release_unneeded(settings)  # what a crash or a failed delete left behind
    uploads.release_finished(settings)
    task_uploads.release_finished(settings)  # speech requests' media whose task ended in a crash
    uploads.sweep_expired(settings)  # abandoned partial uploads
    webhook_delivery.sweep(settings)  # deliveries whose message was lost or whose worker died
    webhooks.seal_plain_secrets(settings)  # kept in clear by a version before sealing
    if sent:
        with session_scope(settings.db_url) as s:
            s.execute(
                update(AITask)
                .where(AITask.id.in_(sent), AITask.status == TaskStatus.RECEIVED)
                .values(status=TaskStatus.PENDING)
            )
    return sent


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
