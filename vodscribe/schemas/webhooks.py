"""``/streaming/webhook`` (vodscribe's extension): a client's webhook endpoint and its deliveries."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from vodscribe.schemas.text import URL


class WebhookSet(BaseModel):
    """``PUT /streaming/webhook``: where events are POSTed."""

    model_config = ConfigDict(extra="forbid")

    url: URL = Field(description="https:// (or http://) URL on a public address, no credentials")


class WebhookAttemptOut(BaseModel):
    number: int
    at: str | None
    status_code: int | None = Field(description="The receiver's HTTP status; null when it was not reached")
    error: str | None = Field(description="Why the attempt failed (a non-2xx status, a timeout, ...)")
    duration_ms: int


class WebhookDeliveryOut(BaseModel):
    id: str = Field(description="Sent as X-Vodscribe-Delivery: the same on every attempt")
    type: str = Field(description="video, video_delete or ai_task")
    status: str = Field(description="pending, delivered or failed")
    created_at: str | None
    next_attempt_at: str | None = Field(description="When it is tried next; null once it has ended")
    finished_at: str | None
    attempts: list[WebhookAttemptOut]


class WebhookOut(BaseModel):
    url: str | None
    enabled: bool = Field(description="Whether events are recorded and sent (a URL is set)")
    secret_hint: str | None = Field(description="The start and end of the signing secret")
    secret: str | None = Field(
        default=None, description="The signing secret in full: only in the answer that created it"
    )
    deliveries: list[WebhookDeliveryOut] = Field(description="The latest deliveries, newest first")


class WebhookSecretOut(BaseModel):
    secret: str = Field(description="The new signing secret in full; shown only here")
    secret_hint: str
