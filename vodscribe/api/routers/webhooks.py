"""``/streaming/webhook``: a client's webhook (vodscribe's extension; Gcore documents the events,
KB-HOOK, but no route to set the endpoint). See the README for the events and their signature."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from vodscribe.api.deps import ClientDep, SessionDep, SettingsDep
from vodscribe.api.route_classes import VideoRoute
from vodscribe.config import Settings
from vodscribe.db.tables import Client
from vodscribe.schemas.errors import FieldErrors, StatusErrorBody, responses
from vodscribe.schemas.webhooks import (
    WebhookAttemptOut,
    WebhookDeliveryOut,
    WebhookOut,
    WebhookSecretOut,
    WebhookSet,
)
from vodscribe.services import webhooks
from vodscribe.services.ai_tasks import iso
from vodscribe.services.webhooks import PENDING, WebhookError

# VideoRoute: a body field error answers 422 {"errors": {"url": [...]}} as the video routes do.
router = APIRouter(prefix="/streaming/webhook", tags=["Webhook (vodscribe)"], route_class=VideoRoute)
ERRORS = responses(400, 401, 429, model=StatusErrorBody)
#: Deliveries shown by GET, newest first.
SHOWN_DELIVERIES = 20


def _out(session: Session, settings: Settings, client: Client, *, secret: str | None = None) -> WebhookOut:
    endpoint = webhooks.get_endpoint(session, client)
    deliveries = [
        WebhookDeliveryOut(
            id=log.delivery.id,
            type=log.delivery.event,
            status=log.delivery.status,
            created_at=iso(log.delivery.created_at),
            next_attempt_at=iso(log.delivery.next_attempt_at) if log.delivery.status == PENDING else None,
            finished_at=iso(log.delivery.finished_at),
            attempts=[
                WebhookAttemptOut(
                    number=a.number,
                    at=iso(a.at),
                    status_code=a.status_code,
                    error=a.error,
                    duration_ms=a.duration_ms,
                )
                for a in log.attempts
            ],
        )
        for log in webhooks.recent_deliveries(session, client, SHOWN_DELIVERIES)
    ]
    return WebhookOut(
        url=endpoint.url if endpoint else None,
        enabled=bool(endpoint and endpoint.url),
        secret_hint=webhooks.hint(webhooks.secret_of(settings, endpoint)) if endpoint else None,
        secret=secret,
        deliveries=deliveries,
    )


@router.get("", response_model=WebhookOut, responses=ERRORS)
def get_webhook(client: ClientDep, session: SessionDep, settings: SettingsDep) -> Any:
    """The endpoint, whether it is enabled, and the latest deliveries with their attempts."""
    return _out(session, settings, client)


@router.put("", response_model=WebhookOut, responses={**ERRORS, **responses(422, model=FieldErrors)})
def set_webhook(body: WebhookSet, client: ClientDep, session: SessionDep, settings: SettingsDep) -> Any:
    """Send events to ``url`` (checked like a video's ``origin_url``). The first PUT creates the
    signing secret and answers it in full, once."""
    try:
        _, created = webhooks.set_url(session, settings, client, body.url)
    except WebhookError as exc:
        return Response(FieldErrors(errors=exc.errors).model_dump_json(), 422, media_type="application/json")
    return _out(session, settings, client, secret=created)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
def delete_webhook(client: ClientDep, session: SessionDep) -> Response:
    """Stop sending events (deliveries already recorded that are still pending fail)."""
    webhooks.disable(session, client)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/secret", response_model=WebhookSecretOut, responses=ERRORS)
def rotate_secret(client: ClientDep, session: SessionDep, settings: SettingsDep) -> Any:
    """A new signing secret, answered in full once; every later attempt (retries too) is signed
    with it, and the old one no longer verifies."""
    secret = webhooks.rotate_secret(session, settings, client)
    return WebhookSecretOut(secret=secret, secret_hint=webhooks.hint(secret))
