"""The Celery application and the one way to put work on it.

Only task *names* live here, so the API side can dispatch without importing the worker code. Queues:
``asr`` (speech recognition: place it on GPU machines) and ``media`` (ffmpeg work). The embedded worker
consumes both. The database, not the broker, holds task state; a lost message is re-sent by the reaper.
"""

from __future__ import annotations

from functools import lru_cache

from celery import Celery

from vodscribe.config import Settings, get_settings

TRANSCRIBE = "vodscribe.transcribe"
ASR_QUEUE = "asr"
MEDIA_QUEUE = "media"


def make_celery(settings: Settings) -> Celery:
    app = Celery("vodscribe", broker=settings.celery_broker_url, include=["vodscribe.worker.tasks"])
    conf: dict[str, object] = {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_default_queue": ASR_QUEUE,
        "task_routes": {TRANSCRIBE: {"queue": ASR_QUEUE}},
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
    }
    if settings.celery_broker_url.startswith("filesystem"):
        folder = settings.broker_dir.resolve()
        for sub in ("queue", "processed"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        conf["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            "polling_interval": 0.2,
        }
    else:
        # Redis: redeliver an unacknowledged message after this long (longer than any task's run).
        conf["broker_transport_options"] = {"visibility_timeout": 6 * 3600}
    app.conf.update(conf)
    return app


@lru_cache(maxsize=1)
def get_celery() -> Celery:
    return make_celery(get_settings())


def dispatch_transcription(task_id: str, *, countdown: float | None = None) -> None:
    get_celery().send_task(TRANSCRIBE, args=[task_id], queue=ASR_QUEUE, countdown=countdown)
