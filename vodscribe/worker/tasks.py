"""Celery task definitions: thin wrappers over the runners of this package.

A task that meets the database unreachable (a restart, a failover) is sent again shortly, with a
growing wait, rather than dropped for the reaper to find minutes later: nothing was claimed, or what
was claimed is taken back by the claim's own rules (a task under way is never run twice).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from celery.signals import worker_init, worker_process_init
from sqlalchemy.exc import InterfaceError, OperationalError

from vodscribe import metrics
from vodscribe.config import get_settings
from vodscribe.engines.whisper import engine_for
from vodscribe.queue import DELIVER_WEBHOOK, PROCESS_VIDEO, TRANSCRIBE, get_celery
from vodscribe.worker.ai_task_runner import run_task
from vodscribe.worker.video_runner import run_video
from vodscribe.worker.webhook_delivery import deliver

log = logging.getLogger(__name__)
app = get_celery()

#: Sent again after 2, 4, 8... seconds (at most 60, jittered) while the database is unreachable; after
#: that many, the reaper's re-send takes over.
DATABASE_RETRY: dict[str, object] = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 20,
}


def counted(kind: str, run: Callable[[], str]) -> str:
    """Run one job and count how it ended (``vodscribe_jobs_total``) and how long an attempt that ran
    took (``vodscribe_job_run_seconds``; a message that found nothing to do is not an attempt)."""
    started = time.monotonic()
    outcome = run().lower()
    metrics.JOBS.labels(kind, outcome).inc()
    if outcome != "skipped":
        metrics.JOB_RUN.labels(kind, outcome).observe(time.monotonic() - started)
    return outcome


@app.task(name=TRANSCRIBE, acks_late=True, ignore_result=True, **DATABASE_RETRY)
def transcribe(task_id: str) -> str:
    return counted(metrics.AI_TASK, lambda: run_task(get_settings(), task_id))


@app.task(name=PROCESS_VIDEO, acks_late=True, ignore_result=True, **DATABASE_RETRY)
def process_video(video_id: int) -> str:
    return counted(metrics.VIDEO, lambda: run_video(get_settings(), video_id))


@app.task(name=DELIVER_WEBHOOK, acks_late=True, ignore_result=True, **DATABASE_RETRY)
def deliver_webhook(delivery_id: str) -> str:
    return counted(metrics.WEBHOOK, lambda: deliver(get_settings(), delivery_id))


@worker_process_init.connect
def _preload_model(**_: object) -> None:
    """Load the ASR model once per worker process, before the first task arrives."""
    try:
        engine_for(get_settings())
    except Exception:
        log.exception("could not preload the ASR model; tasks will fail until it loads")


@worker_init.connect
def _preload_model_solo(sender: object = None, **_: object) -> None:
    """The solo pool (embedded default) runs tasks in the main process: load the model there."""
    if "solo" in str(getattr(sender, "pool_cls", "")).lower():
        _preload_model()
