"""``GET /metrics``: Prometheus' text format, behind ``Authorization: Bearer $VODSCRIBE_METRICS_TOKEN``.

Two kinds of numbers (see :mod:`vodscribe.metrics`): the events this machine's processes counted,
and the state of the whole deployment read from the database and the broker at scrape time (queue
depth and age, jobs and videos by state, the webhook outbox, per-client totals). The state is the
same from every API replica: sum the events over instances, take ``max`` of the state.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from vodscribe import metrics
from vodscribe.api.deps import SettingsDep
from vodscribe.api.errors import NOT_FOUND, ApiError
from vodscribe.config import Settings
from vodscribe.db.session import session_scope
from vodscribe.db.statuses import JobState, TaskStatus
from vodscribe.db.tables import AITask, Video, WebhookDelivery, utcnow
from vodscribe.queue import ASR_QUEUE, MEDIA_QUEUE, QUEUES, WEBHOOK_QUEUE, queue_depth

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics_page(request: Request, settings: SettingsDep) -> Response:
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if not token:
        raise ApiError(404, NOT_FOUND, with_status=True)  # not configured: as if there were none
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise ApiError(
            401, "Unauthorized: GET /metrics needs Authorization: Bearer <VODSCRIBE_METRICS_TOKEN>"
        )
    body = generate_latest(metrics.registry(DeploymentState(settings)))
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def _gauge(name: str, doc: str, labels: list[str], rows: object) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for *values, number in rows:  # type: ignore[attr-defined]
        family.add_metric([str(v) for v in values], float(number or 0))
    return family


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


#: Rows counted by some of their columns: (metric, help, label names, the columns, in that order).
_COUNTS: tuple[tuple[str, str, list[str], tuple[InstrumentedAttribute[Any], ...]], ...] = (
    ("vodscribe_ai_tasks", "AI tasks by status", ["status"], (AITask.status,)),
    ("vodscribe_video_jobs", "Hosted videos' media jobs by state", ["state"], (Video.job_state,)),
    ("vodscribe_videos", "Hosted videos by status", ["status"], (Video.status,)),
    ("vodscribe_webhook_outbox", "Webhook deliveries by status", ["status"], (WebhookDelivery.status,)),
    (
        "vodscribe_client_ai_tasks",
        "AI tasks per client and status (usage)",
        ["client_id", "status"],
        (AITask.client_id, AITask.status),
    ),
)


class DeploymentState(Collector):
    """The deployment's state, read at scrape time (a failed read is logged and left out)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with session_scope(self.settings.db_url) as s:
                families = list(self._from_database(s))
        except Exception:
            log.exception("metrics: the database could not be read")
            families = []
        yield from families
        depth = GaugeMetricFamily(
            "vodscribe_queue_messages", "Messages waiting on the broker, per queue", labels=["queue"]
        )
        for queue in QUEUES:
            try:
                depth.add_metric([queue], float(queue_depth(self.settings, queue)))
            except Exception:
                log.exception("metrics: the depth of queue %s could not be read", queue)
        yield depth

    def _from_database(self, s: Session) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        for name, doc, labels, columns in _COUNTS:
            yield _gauge(name, doc, labels, s.execute(select(*columns, func.count()).group_by(*columns)))
        seconds = select(Video.client_id, func.sum(Video.duration_ms) / 1000.0)
        yield _gauge(
            "vodscribe_client_video_seconds", "Seconds of hosted video per client (usage)", ["client_id"],
            s.execute(seconds.group_by(Video.client_id)),
        )  # fmt: skip
        oldest = GaugeMetricFamily(
            "vodscribe_queue_oldest_seconds",
            "How long the oldest job waiting for a worker has waited, per queue (0: none waits)",
            labels=["queue"],
        )
        waiting_task = s.scalar(
            select(func.min(func.coalesce(AITask.heartbeat_at, AITask.created_at))).where(
                AITask.status.in_((TaskStatus.PENDING, TaskStatus.RETRY))
            )
        )
        waiting_video = s.scalar(
            select(func.min(Video.heartbeat_at)).where(Video.job_state == JobState.QUEUED)
        )
        waiting_hook = s.scalar(
            select(func.min(WebhookDelivery.next_attempt_at)).where(
                WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now
            )
        )
        oldest.add_metric([ASR_QUEUE], _age(now, waiting_task))
        oldest.add_metric([MEDIA_QUEUE], _age(now, waiting_video))
        oldest.add_metric([WEBHOOK_QUEUE], _age(now, waiting_hook))
        yield oldest
