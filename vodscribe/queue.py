"""The Celery application and the one way to put work on it.

Only task *names* live here, so the API side can dispatch without importing the worker code. Queues:
``asr`` (speech recognition: place it on GPU machines), ``media`` (ffmpeg work) and ``webhooks``
(event deliveries, which wait on other people's servers: never behind or in front of media work). The
embedded worker consumes the first two, and ``vodscribe serve`` runs a second one for ``webhooks``.
The database, not the broker, holds task state; a lost message is re-sent by the reaper.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from celery import Celery
from kombu.entity import Exchange, Queue

from vodscribe import fsqueue
from vodscribe.config import Settings, get_settings

TRANSCRIBE = "vodscribe.transcribe"
PROCESS_VIDEO = "vodscribe.process_video"
ASR_QUEUE = "asr"
MEDIA_QUEUE = "media"
DELIVER_WEBHOOK = "vodscribe.deliver_webhook"
WEBHOOK_QUEUE = "webhooks"


def make_celery(broker_url: str, broker_dir: Path) -> Celery:
    if broker_url.startswith("filesystem://"):
        broker_url = f"{fsqueue.SCHEME}://"  # kombu's, with atomic message files
    app = Celery("vodscribe", broker=broker_url, include=["vodscribe.worker.tasks"])
    conf: dict[str, object] = {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_default_queue": ASR_QUEUE,
        "task_queues": tuple(
            Queue(q, Exchange(q, type="direct"), routing_key=q)
            for q in (ASR_QUEUE, MEDIA_QUEUE, WEBHOOK_QUEUE)
        ),
        "task_routes": {
            TRANSCRIBE: {"queue": ASR_QUEUE},
            PROCESS_VIDEO: {"queue": MEDIA_QUEUE},
            DELIVER_WEBHOOK: {"queue": WEBHOOK_QUEUE},
        },
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
    }
    if broker_url.startswith(f"{fsqueue.SCHEME}://"):
        folder = broker_dir.resolve()
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        conf["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.2,
        }
    else:
        # Redis: redeliver an unacknowledged message after this long (longer than any task's run).
        conf["broker_transport_options"] = {"visibility_timeout": 6 * 3600}
    app.conf.update(conf)
    return app


@lru_cache(maxsize=8)
def _app(broker_url: str, broker_dir: Path) -> Celery:
    return make_celery(broker_url, broker_dir)


def celery_for(settings: Settings) -> Celery:
    """The Celery app for these settings (one per broker configuration and process)."""
    return _app(settings.celery_broker_url, settings.broker_dir.resolve())


def get_celery() -> Celery:
    """The app for the process's own settings (what ``celery -A vodscribe.worker.app`` runs)."""
    return celery_for(get_settings())


_declared: set[int] = set()
_declare_lock = threading.Lock()


def declare_queues(app: Celery) -> None:
    """Declare our queues on the broker once per process. On Redis a message published to a queue
    that no consumer has declared yet has no binding and is silently dropped."""
    with _declare_lock:
        if id(app) in _declared:
            return
        with app.connection_for_write() as conn:
            for queue in app.conf.task_queues:
                queue.bind(conn.default_channel).declare()
        _declared.add(id(app))


def _send(settings: Settings, name: str, arg: object, queue: str, countdown: float | None) -> None:
    app = celery_for(settings)
    declare_queues(app)
    app.send_task(name, args=[arg], queue=queue, countdown=countdown)


def dispatch_transcription(settings: Settings, task_id: str, *, countdown: float | None = None) -> None:
    _send(settings, TRANSCRIBE, task_id, ASR_QUEUE, countdown)


def dispatch_video(settings: Settings, video_id: int, *, countdown: float | None = None) -> None:
    _send(settings, PROCESS_VIDEO, video_id, MEDIA_QUEUE, countdown)


def dispatch_webhook(settings: Settings, delivery_id: str, *, countdown: float | None = None) -> None:
    _send(settings, DELIVER_WEBHOOK, delivery_id, WEBHOOK_QUEUE, countdown)


QUEUES = (ASR_QUEUE, MEDIA_QUEUE, WEBHOOK_QUEUE)
#: kombu's Redis transport keeps a queue's messages in a list per priority step (the plain name is
#: step 0); Celery's default steps.
_REDIS_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def queue_depth(settings: Settings, queue: str) -> int:
    """Messages waiting in ``queue`` on the broker (not those a worker holds, nor delayed retries)."""
    url = settings.celery_broker_url
    if url.startswith("filesystem://"):
        folder = settings.broker_dir / "queue"
        return sum(1 for _ in folder.glob(f"*.{queue}.msg")) if folder.is_dir() else 0
    if settings.redis_broker:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=5)
        try:
            return sum(int(client.llen(queue + suffix)) for suffix in _REDIS_PRIORITY_SUFFIXES)
        finally:
            client.close()
    raise ValueError(f"queue depth is not known for the broker {url.split(':', 1)[0]}")
