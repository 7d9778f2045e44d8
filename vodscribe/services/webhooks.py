"""A client's webhook (vodscribe's extension of Gcore's KB-HOOK): its endpoint and signing secret, and
the events recorded for it.

An event is written to the outbox (:class:`WebhookDelivery`) by :func:`record_video`,
:func:`record_video_delete` and :func:`record_task` inside the transaction of the change it reports,
so it is committed exactly when that change is: a crash cannot lose it nor report a change that was
rolled back. Its queue message is sent once that transaction commits (a session hook, below); if the
message is lost, the reaper sends it again (:func:`vodscribe.worker.webhook_delivery.sweep`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from vodscribe import keys
from vodscribe.config import Settings
from vodscribe.db.session import session_scope
from vodscribe.db.tables import (
    AITask,
    Client,
    Rendition,
    Video,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from vodscribe.errors import URLNotAllowedError
from vodscribe.media.fetch import check_url
from vodscribe.queue import dispatch_webhook
from vodscribe.storage.video_files import media_store

log = logging.getLogger(__name__)

#: Events of the outbox (``type`` of the body): Gcore's two VOD events and our AI-task one.
VIDEO, VIDEO_DELETE, AI_TASK = "video", "video_delete", "ai_task"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
MAX_URL_LENGTH = 2048
_TO_SEND = "vodscribe_webhooks_to_send"  # Session.info key: deliveries to dispatch after commit


class WebhookError(Exception):
    """A webhook URL that is refused, as ``{"url": [message]}``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.errors = {"url": [message]}


# --- the endpoint -------------------------------------------------------------------------------


#: What the secrets are sealed for (:mod:`vodscribe.keys`): their key is derived for this alone.
SECRET_PURPOSE = "webhook-secret"


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


def hint(secret: str) -> str:
    """What GET shows of a secret: enough to tell two apart, not to sign."""
    return f"{secret[:6]}…{secret[-4:]}"


def secret_of(settings: Settings, endpoint: WebhookEndpoint) -> str:
    """The endpoint's signing secret (kept sealed in the database)."""
    return keys.unseal(settings, SECRET_PURPOSE, endpoint.secret)


def _new_secret(settings: Settings, endpoint: WebhookEndpoint) -> str:
    secret = new_secret()
    endpoint.secret = keys.seal(settings, SECRET_PURPOSE, secret)
    return secret


def seal_plain_secrets(settings: Settings) -> int:
    """Seal secrets stored in clear before sealing existed (the reaper's sweep); returns how many."""
    with session_scope(settings.db_url) as s:
        plain = s.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.secret.not_like(f"{keys.SEALED}%"))
        ).all()
        for endpoint in plain:
            endpoint.secret = keys.seal(settings, SECRET_PURPOSE, endpoint.secret)
    return len(plain)


def get_endpoint(session: Session, client: Client) -> WebhookEndpoint | None:
    return session.get(WebhookEndpoint, client.id)


def set_url(
    session: Session, settings: Settings, client: Client, url: str
) -> tuple[WebhookEndpoint, str | None]:
    """Point the client's webhook at ``url`` (checked like a media URL). Returns the endpoint and
    its secret when it was created now (the caller shows it in full once)."""
    if len(url) > MAX_URL_LENGTH:
        raise WebhookError(f"is too long (maximum is {MAX_URL_LENGTH} characters)")
    try:
        checked = check_url(
            url, allow_private=settings.allow_private_urls, ports=settings.fetch_allowed_ports
        )
    except URLNotAllowedError as exc:
        raise WebhookError(exc.message) from exc
    endpoint = get_endpoint(session, client)
    created = None
    if endpoint is None:
        endpoint = WebhookEndpoint(client_id=client.id)
        created = _new_secret(settings, endpoint)
        session.add(endpoint)
    endpoint.url = checked
    endpoint.updated_at = utcnow()
    session.commit()
    return endpoint, created


def disable(session: Session, client: Client) -> None:
    """Stop recording events for the client (the secret and the delivery log stay)."""
    endpoint = get_endpoint(session, client)
    if endpoint is not None:
        endpoint.url = None
        endpoint.updated_at = utcnow()
        session.commit()


def rotate_secret(session: Session, settings: Settings, client: Client) -> str:
    """A new signing secret (returned); deliveries signed from now on (retries too) use it."""
    endpoint = get_endpoint(session, client)
    if endpoint is None:
        endpoint = WebhookEndpoint(client_id=client.id)
        session.add(endpoint)
    secret = _new_secret(settings, endpoint)
    endpoint.updated_at = utcnow()
    session.commit()
    return secret


@dataclass(frozen=True, slots=True)
class DeliveryLog:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]


def recent_deliveries(session: Session, client: Client, limit: int) -> list[DeliveryLog]:
    """The client's last ``limit`` deliveries, newest first, each with its attempts in order."""
    rows = list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.client_id == client.id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
            .limit(limit)
        )
    )
    attempts: dict[str, list[WebhookAttempt]] = {d.id: [] for d in rows}
    if rows:
        query = (
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookAttempt.number)
        )
        for attempt in session.scalars(query):
            attempts[attempt.delivery_id].append(attempt)
    return [DeliveryLog(d, attempts[d.id]) for d in rows]


# --- recording events ------------------------------------------------------------------------------


def _record(session: Session, settings: Settings, client_id: int, kind: str, message: dict[str, Any]) -> None:
    """Add the event to the outbox in ``session``'s transaction, if the client has a webhook."""
    url = session.scalar(select(WebhookEndpoint.url).where(WebhookEndpoint.client_id == client_id))
    if not url:
        return
    delivery = WebhookDelivery(
        client_id=client_id, event=kind, payload={"type": kind, "message": message}, next_attempt_at=utcnow()
    )
    session.add(delivery)
    session.flush()
    session.info.setdefault(_TO_SEND, []).append((settings, delivery.id))


def video_message(settings: Settings, video: Video, renditions: Iterable[Rendition]) -> dict[str, Any]:
    """Gcore's ``{"video": {...}}`` message of a ``video`` event."""
    store = media_store(settings)
    return {
        "video": {
            "id": video.id,
            "slug": video.slug,
            "name": video.name,
            "duration": video.duration_ms,
            "stream_id": None,
            "status": video.status,
            "error": video.error,
            "updated_at": video.updated_at.isoformat(timespec="microseconds"),
            "converted_videos": [
                {
                    "name": r.name,
                    "status": r.status,
                    "mp4_url": store.url(settings.base_url, video.key, r.filename),
                }
                for r in renditions
            ],
        }
    }


def record_video(session: Session, settings: Settings, video_id: int) -> None:
    """A ``video`` event with the video as ``session`` sees it now (after its status changed)."""
    video = session.scalars(
        select(Video).where(Video.id == video_id).execution_options(populate_existing=True)
    ).first()
    if video is None:
        return
    renditions = session.scalars(
        select(Rendition)
        .where(Rendition.video_id == video_id)
        .order_by(Rendition.id)
        .execution_options(populate_existing=True)
    )
    _record(session, settings, video.client_id, VIDEO, video_message(settings, video, renditions))


def record_video_delete(session: Session, settings: Settings, video: Video) -> None:
    message = {"video": {"id": video.id, "slug": video.slug, "name": video.name}}
    _record(session, settings, video.client_id, VIDEO_DELETE, message)


def record_task(session: Session, settings: Settings, task_id: str) -> None:
    """An ``ai_task`` event for a task that has just ended (SUCCESS, FAILURE or REVOKED)."""
    task = session.scalars(
        select(AITask).where(AITask.id == task_id).execution_options(populate_existing=True)
    ).first()
    if task is None:
        return
    body: dict[str, Any] = {"task_id": task.id, "task_name": task.task_name, "status": task.status}
    if task.video_id is not None:
        body["video_id"] = task.video_id
    error = (task.result or {}).get("error")
    if error:
        body["error"] = error
    body["completed_at"] = task.completed_at.isoformat() if task.completed_at else None
    _record(session, settings, task.client_id, AI_TASK, {"task": body})


# --- dispatch once committed -------------------------------------------------------------------------


@event.listens_for(Session, "after_commit")
def _send_committed(session: Session) -> None:
    for settings, delivery_id in session.info.pop(_TO_SEND, []):
        try:
            dispatch_webhook(settings, delivery_id)
        except Exception:  # the outbox row is committed: the reaper sends it later
            log.exception("could not queue webhook delivery %s; the reaper will", delivery_id)


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back(session: Session) -> None:
    session.info.pop(_TO_SEND, None)
