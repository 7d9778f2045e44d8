"""Sending the outbox (:mod:`vodscribe.services.webhooks`) to clients' endpoints, at least once.

A delivery runs on the ``webhooks`` queue only. An attempt is claimed with a conditional update that
moves ``next_attempt_at`` to the end of a lease (two messages for one delivery: one sends), then POSTs
the event with the guarded (SSRF-safe) client: a short timeout for the whole attempt, no redirects,
the response body never read. Clients share the pool fairly: at most ``webhook_concurrency_per_client``
attempts of one client are under way at once (counted from their leases, across workers); a message
beyond that goes back to the queue for ``webhook_defer_s`` without taking a thread, so a receiver that
hangs delays its own deliveries only. A 2xx ends it; anything else is retried after 1, 3, 9, ... times
``webhook_backoff_s`` (capped) until ``webhook_max_attempts``, then it is failed. The reaper's
:func:`sweep` re-sends a pending delivery whose due time is long past: its message was lost or its
worker died mid-attempt.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy import ScalarSelect, delete, func, select, update
from sqlalchemy.orm import Session
from ssrfguard.httpx import AsyncClient as GuardedClient

from vodscribe.config import Settings
from vodscribe.db.session import changed, session_scope
from vodscribe.db.tables import WebhookAttempt, WebhookDelivery, WebhookEndpoint, utcnow
from vodscribe.media.public_address import PublicOnlyPolicy
from vodscribe.queue import dispatch_webhook
from vodscribe.services.webhooks import DELIVERED, FAILED, PENDING, secret_of

log = logging.getLogger(__name__)

USER_AGENT = "vodscribe-webhooks/1"
TIMESTAMP_HEADER = "X-Vodscribe-Timestamp"
SIGNATURE_HEADER = "X-Vodscribe-Signature"
DELIVERY_HEADER = "X-Vodscribe-Delivery"
EVENT_HEADER = "X-Vodscribe-Event"
#: Slack for a retry message that arrives a little before its due time (clocks of two machines).
_EARLY_S = 2.0
_MAX_ERROR = 500


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=`` HMAC-SHA256 of ``"{timestamp}.{body}"`` with the client's secret, in hex."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def backoff(settings: Settings, attempts: int) -> float:
    """The wait after the ``attempts``-th failed attempt: base, 3 x base, 9 x base, ... capped."""
    return float(min(settings.webhook_backoff_max_s, settings.webhook_backoff_s * 3 ** (attempts - 1)))


@dataclass(frozen=True, slots=True)
class _Claim:
    delivery_id: str
    attempt: int
    url: str
    secret: str
    event: str
    body: bytes


class _Deferred:
    """The client has ``webhook_concurrency_per_client`` attempts under way: try again shortly."""


DEFERRED = _Deferred()


def _sending(client_id: int, now: object) -> ScalarSelect[int]:
    """How many of the client's attempts are under way (their lease not over)."""
    return (
        select(func.count(WebhookDelivery.id))
        .where(
            WebhookDelivery.client_id == client_id,
            WebhookDelivery.status == PENDING,
            WebhookDelivery.sending_until > now,
        )
        .scalar_subquery()
    )


def _claim(settings: Settings, delivery_id: str) -> _Claim | _Deferred | None:
    """Take the next attempt of the delivery, or None when it is not due (done, failed, being sent,
    or waiting for its backoff), or :data:`DEFERRED` when its client has enough under way. Without an
    endpoint URL any more, the delivery is failed."""
    now = utcnow()
    with session_scope(settings.db_url) as s:
        row = s.get(WebhookDelivery, delivery_id)
        if row is None or row.status != PENDING or row.next_attempt_at > now + timedelta(seconds=_EARLY_S):
            return None
        # The endpoint's row lock (PostgreSQL) makes one claim of a client at a time: counting what
        # is under way and adding to it cannot interleave. SQLite writes one transaction at a time.
        endpoint = s.get(WebhookEndpoint, row.client_id, with_for_update=True)
        if endpoint is None or not endpoint.url:
            s.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == PENDING)
                .values(status=FAILED, finished_at=now)
            )
            log.info("webhook delivery %s failed: the client has no webhook URL any more", delivery_id)
            return None
        # The lease: long enough for one attempt; a worker that dies leaves it for the reaper.
        try:
            secret = secret_of(settings, endpoint)
        except ValueError:  # this machine has another key: left pending until it has the right one
            log.error("webhook delivery %s: its secret cannot be read here", delivery_id, exc_info=True)
            return None
        lease = now + timedelta(seconds=2 * settings.webhook_timeout_s + 5)
        attempt = row.attempts + 1  # read before the update (which refreshes ``row``)
        body = json.dumps(row.payload, separators=(",", ":"), ensure_ascii=False).encode()
        # The count is in the update itself: SQLite reads outside a transaction, so a count read
        # first could be stale by the time this writes.
        room = _sending(row.client_id, now) < settings.webhook_concurrency_per_client
        held = update(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == PENDING,
            WebhookDelivery.attempts == attempt - 1,
            room,
        )
        if not changed(s, held.values(attempts=attempt, next_attempt_at=lease, sending_until=lease)):
            return None if s.scalar(select(room)) else DEFERRED
        return _Claim(delivery_id, attempt, endpoint.url, secret, row.event, body)


def _client(settings: Settings) -> httpx.AsyncClient:
    # Each phase (connect, write, every read) is bounded by the timeout, and _post bounds the whole
    # attempt by it too (a receiver dripping its headers a byte at a time). Redirects are not
    # followed: a receiver answers for itself. trust_env=False: no proxy (it would resolve the host).
    timeout = httpx.Timeout(settings.webhook_timeout_s)
    headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
    if settings.allow_private_urls:
        return httpx.AsyncClient(timeout=timeout, follow_redirects=False, headers=headers, trust_env=False)
    policy = PublicOnlyPolicy(allowed_ports=frozenset(settings.fetch_allowed_ports), max_redirects=0)
    return GuardedClient(
        policy=policy, timeout=timeout, follow_redirects=False, headers=headers, trust_env=False
    )


async def _send(settings: Settings, claim: _Claim, headers: dict[str, str]) -> int:
    async with (
        _client(settings) as client,
        client.stream("POST", claim.url, content=claim.body, headers=headers) as response,
    ):
        return response.status_code  # the body is never read: closing the stream drops it


def _post(settings: Settings, claim: _Claim) -> tuple[int | None, str | None]:
    """POST the event once, within ``webhook_timeout_s`` in all: (HTTP status, None) or (None, the
    error). Async only so that the whole attempt can be cut off cleanly at its deadline."""
    timestamp = int(time.time())
    headers = {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(claim.secret, timestamp, claim.body),
        DELIVERY_HEADER: claim.delivery_id,
        EVENT_HEADER: claim.event,
    }
    try:
        return asyncio.run(
            asyncio.wait_for(_send(settings, claim, headers), settings.webhook_timeout_s)
        ), None
    except TimeoutError:
        return None, f"No answer within {settings.webhook_timeout_s:g} s"
    except Exception as exc:  # ssrfguard's refusals, timeouts, refused connections: all retried
        return None, f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]


def deliver(settings: Settings, delivery_id: str) -> str:
    """One attempt of a delivery (the ``webhooks`` queue's task); returns what became of it."""
    claim = _claim(settings, delivery_id)
    if claim is None:
        return "SKIPPED"
    if isinstance(claim, _Deferred):
        try:
            dispatch_webhook(settings, delivery_id, countdown=settings.webhook_defer_s)
        except Exception:
            log.exception("could not queue webhook delivery %s again; the reaper will", delivery_id)
        return "DEFERRED"
    started = time.monotonic()
    code, error = _post(settings, claim)
    took = round(1000 * (time.monotonic() - started))
    ok = code is not None and 200 <= code < 300
    if error is None and not ok:
        error = f"HTTP {code}"
    outcome, wait = _store(settings, claim, code, None if ok else error, took)
    log.info(
        "webhook delivery %s attempt %d to %s: %s in %d ms -> %s",
        delivery_id, claim.attempt, claim.url, code if ok else error, took, outcome,
    )  # fmt: skip
    if wait is not None:
        try:
            dispatch_webhook(settings, delivery_id, countdown=wait)
        except Exception:
            log.exception("could not queue the retry of webhook delivery %s; the reaper will", delivery_id)
    return outcome


def _store(
    settings: Settings, claim: _Claim, code: int | None, error: str | None, took_ms: int
) -> tuple[str, float | None]:
    """Record the attempt and the delivery's new state; the wait before a retry, if any."""
    now = utcnow()
    wait: float | None = None
    if error is None:
        values: dict[str, object] = {"status": DELIVERED, "finished_at": now}
    elif claim.attempt >= settings.webhook_max_attempts:
        values = {"status": FAILED, "finished_at": now}
    else:
        wait = backoff(settings, claim.attempt)
        values = {"next_attempt_at": now + timedelta(seconds=wait)}
    values["sending_until"] = None
    with session_scope(settings.db_url) as s:
        ours = update(WebhookDelivery).where(
            WebhookDelivery.id == claim.delivery_id,
            WebhookDelivery.status == PENDING,
            WebhookDelivery.attempts == claim.attempt,
        )
        if not changed(s, ours.values(**values)):
            return "GONE", None  # taken over after its lease, or its client deleted meanwhile
        s.add(
            WebhookAttempt(
                delivery_id=claim.delivery_id,
                number=claim.attempt,
                at=now,
                status_code=code,
                error=error,
                duration_ms=took_ms,
            )
        )
    return str(values.get("status", "retry")), wait


def sweep(settings: Settings) -> list[str]:
    """Send again the pending deliveries overdue by ``webhook_redispatch_after_s`` (a lost message, a
    dead worker); their due time moves to now, so one pass sends each once. Returns their ids. Ended
    deliveries older than ``webhook_keep_s`` are deleted (their attempts with them)."""
    now = utcnow()
    overdue = now - timedelta(seconds=settings.webhook_redispatch_after_s)
    with session_scope(settings.db_url) as s:
        expired = now - timedelta(seconds=settings.webhook_keep_s)
        s.execute(
            delete(WebhookDelivery).where(
                WebhookDelivery.status != PENDING, WebhookDelivery.finished_at < expired
            )
        )
        ids = _overdue(s, overdue)
        if ids:
            s.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).values(next_attempt_at=now))
    sent = []
    for delivery_id in ids:
        try:
            dispatch_webhook(settings, delivery_id)
            sent.append(delivery_id)
        except Exception:
            log.exception("could not send webhook delivery %s again", delivery_id)
    if sent:
        log.warning("webhook deliveries sent again (lost message or worker): %s", ", ".join(sent))
    return sent


def _overdue(session: Session, before: object) -> list[str]:
    query = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at < before)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(500)  # a bounded pass; the next one takes the rest
    )
    return list(session.scalars(query))
