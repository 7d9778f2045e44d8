"""Webhooks (vodscribe's extension of Gcore's KB-HOOK): the settings routes in-process, and deliveries
from a real ``vodscribe serve`` to a receiver on 127.0.0.1 that this test runs and that checks every
signature. Only 127.0.0.1 is ever sent to: the refused private URLs are tested where no worker runs."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import MediaServer, Service, in_process_api, start_service, stop_service, tone_video
from tests.waiting import eventually
from vodscribe import keys
from vodscribe.api.app import create_app
from vodscribe.config import Settings
from vodscribe.db.session import migrate, session_scope
from vodscribe.db.tables import AITask, Video, WebhookAttempt, WebhookDelivery, WebhookEndpoint, utcnow
from vodscribe.services import webhooks
from vodscribe.services.clients import create_client, hash_key
from vodscribe.worker import webhook_delivery
from vodscribe.worker.reaper import reap
from vodscribe.worker.webhook_delivery import backoff, deliver, sign

# --- in-process: the settings routes ---------------------------------------------------------------


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The API with private URLs refused (the default) and no worker: nothing is ever sent."""
    with in_process_api(Settings(data_dir=tmp_path)) as c:
        yield c


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/",
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "ftp://93.184.215.14/hook",
        "https://user:pass@93.184.215.14/hook",
        "https://93.184.215.14:22/hook",
    ],
)
def test_a_url_media_would_refuse_is_refused(client: TestClient, url: str) -> None:
    r = client.put("/streaming/webhook", json={"url": url})
    assert r.status_code == 422, r.text
    assert list(r.json()["errors"]) == ["url"] and r.json()["errors"]["url"][0]
    assert client.get("/streaming/webhook").json()["enabled"] is False


def test_bad_bodies_answer_field_errors(client: TestClient) -> None:
    assert client.put("/streaming/webhook", json={}).json() == {"errors": {"url": ["Field required"]}}
    r = client.put("/streaming/webhook", json={"url": 5})
    assert r.status_code == 422 and list(r.json()["errors"]) == ["url"]
    r = client.put("/streaming/webhook", json={"url": "https://93.184.215.14/" + "a" * 3000})
    assert r.status_code == 422 and "too long" in r.json()["errors"]["url"][0]


def test_a_lone_surrogate_in_the_url_is_a_field_error(client: TestClient) -> None:
    body = b'{"url": "https://93.184.215.14/\\ud800"}'  # valid JSON, not encodable text
    r = client.put("/streaming/webhook", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and list(r.json()["errors"]) == ["url"], r.text


def test_secrets_are_sealed_at_rest_and_the_database_is_private(tmp_path: Path) -> None:
    """The database file is readable by its owner only, and the signing secret is not in it: a copy
    of the file gives neither; the service still signs with it. A secret kept in clear by an older
    version is sealed by the reaper and goes on verifying."""
    settings = Settings(data_dir=tmp_path)
    with in_process_api(settings) as c:
        secret = c.put("/streaming/webhook", json={"url": "https://93.184.215.14/hook"}).json()["secret"]
    database = tmp_path / "vodscribe.db"
    assert database.is_file() and database.stat().st_mode & 0o777 == 0o600
    assert secret.encode() not in database.read_bytes()
    for wal in tmp_path.glob("vodscribe.db-*"):
        assert secret.encode() not in wal.read_bytes() and wal.stat().st_mode & 0o077 == 0
    with session_scope(settings.db_url) as s:
        [endpoint] = s.query(WebhookEndpoint).all()
        assert webhooks.secret_of(settings, endpoint) == secret
        endpoint.secret = "whsec_keptinclear"  # as an older version stored it
    assert webhooks.seal_plain_secrets(settings) == 1
    with session_scope(settings.db_url) as s:
        [endpoint] = s.query(WebhookEndpoint).all()
        assert endpoint.secret.startswith("enc1:") and "keptinclear" not in endpoint.secret
        assert webhooks.secret_of(settings, endpoint) == "whsec_keptinclear"
    other = Settings(data_dir=tmp_path / "elsewhere", database_url=settings.db_url)
    with session_scope(settings.db_url) as s, pytest.raises(ValueError, match="another key"):
        webhooks.secret_of(other, s.query(WebhookEndpoint).one())


def test_settings_secret_shown_once_and_rotated(client: TestClient) -> None:
    empty = client.get("/streaming/webhook").json()
    assert empty == {"url": None, "enabled": False, "secret_hint": None, "secret": None, "deliveries": []}
    first = client.put("/streaming/webhook", json={"url": "https://93.184.215.14/hook"}).json()
    assert first["enabled"] is True and first["url"] == "https://93.184.215.14/hook"
    secret = first["secret"]
    assert secret and first["secret_hint"] == f"{secret[:6]}…{secret[-4:]}"
    again = client.put("/streaming/webhook", json={"url": "https://93.184.215.14/other"}).json()
    assert again["secret"] is None and again["secret_hint"] == first["secret_hint"]
    shown = client.get("/streaming/webhook").json()
    assert shown["secret"] is None and secret not in json.dumps(shown)
    rotated = client.post("/streaming/webhook/secret").json()
    assert rotated["secret"] != secret and rotated["secret_hint"] != first["secret_hint"]
    assert client.get("/streaming/webhook").json()["secret_hint"] == rotated["secret_hint"]
    assert client.delete("/streaming/webhook").status_code == 204
    off = client.get("/streaming/webhook").json()
    assert off["enabled"] is False and off["url"] is None and off["secret_hint"] == rotated["secret_hint"]


def test_a_cancel_and_a_deletion_record_their_events(tmp_path: Path) -> None:
    """No worker runs: the events stay in the outbox, where this test reads them."""
    settings = Settings(data_dir=tmp_path, allow_private_urls=True)
    migrate(settings.db_url)
    with session_scope(settings.db_url) as s:
        client, key = create_client(s, "a")
        client_id = client.id
    with TestClient(create_app(settings), headers={"Authorization": f"APIKey {key}"}) as api:
        assert api.put("/streaming/webhook", json={"url": "http://127.0.0.1:9/hook"}).status_code == 200
        task = api.post("/streaming/ai/tasks", json={"url": "http://127.0.0.1:9/a.wav"}).json()["task_id"]
        assert api.post(f"/streaming/ai/tasks/{task}/cancel").status_code == 202
        video = api.post("/streaming/videos", json={"name": "gone"}).json()
        with session_scope(settings.db_url) as s:
            waiting = AITask(client_id=client_id, status="PENDING", task_data={}, video_id=video["id"])
            s.add(waiting)
            s.flush()
            waiting_id = waiting.id
        assert api.delete(f"/streaming/videos/{video['id']}").status_code == 204
        shown = api.get("/streaming/webhook").json()["deliveries"]
        assert [d["type"] for d in shown] == ["video_delete", "ai_task", "ai_task"]
        assert all(d["status"] == "pending" and d["attempts"] == [] for d in shown)
        # Switched off: what is still pending is failed when its turn comes, never sent.
        assert api.delete("/streaming/webhook").status_code == 204
        assert deliver(settings, shown[0]["id"]) == "SKIPPED"
        after = api.get("/streaming/webhook").json()["deliveries"][0]
        assert after["status"] == "failed" and after["attempts"] == [] and after["finished_at"]
    with session_scope(settings.db_url) as s:
        events = [d.payload for d in s.query(WebhookDelivery).order_by(WebhookDelivery.created_at)]
    cancelled, revoked, deleted = (e["message"] for e in events)
    assert cancelled["task"]["task_id"] == task and cancelled["task"]["status"] == "REVOKED"
    assert "video_id" not in cancelled["task"]
    assert revoked["task"] == {
        "task_id": waiting_id,
        "task_name": "transcription",
        "status": "REVOKED",
        "video_id": video["id"],
        "error": "The video was deleted.",
        "completed_at": revoked["task"]["completed_at"],
    }
    assert deleted == {"video": {"id": video["id"], "slug": video["slug"], "name": "gone"}}


def test_signature_and_backoff() -> None:
    body = b'{"type":"video"}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("k", 1700000000, body) == f"v1={expected}"
    assert sign("other", 1700000000, body) != sign("k", 1700000000, body)
    settings = Settings(webhook_backoff_s=10, webhook_backoff_max_s=100)
    assert [backoff(settings, n) for n in (1, 2, 3, 4)] == [10, 30, 90, 100]


def test_events_commit_with_their_change_and_are_queued_after_it(tmp_path: Path) -> None:
    """The reaper failing a video and an AI task records both events in its own transaction; each
    message reaches the ``webhooks`` queue only once that has committed. A rollback leaves none."""
    settings = Settings(data_dir=tmp_path, allow_private_urls=True)
    migrate(settings.db_url)
    old = utcnow() - timedelta(seconds=600)
    with session_scope(settings.db_url) as s:
        client, _ = create_client(s, "a")
        s.add(WebhookEndpoint(client_id=client.id, url="http://127.0.0.1:9/hook", secret="whsec_x"))
        video = Video(
            client_id=client.id, slug="v", name="v", job_state="running", job_attempts=3, heartbeat_at=old
        )
        task = AITask(
            client_id=client.id, status="STARTED", attempts=3, heartbeat_at=old, task_data={"url": "u"}
        )
        s.add_all([video, task])
        s.flush()
        video_id, task_id = video.id, task.id
    with session_scope(settings.db_url) as s:  # a change rolled back takes its event with it
        webhooks.record_video(s, settings, video_id)
        s.rollback()
    reap(settings)
    with session_scope(settings.db_url) as s:
        rows = {d.event: d for d in s.query(WebhookDelivery)}
        assert set(rows) == {"video", "ai_task"}
        assert rows["video"].payload["message"]["video"]["status"] == "error"
        ended = rows["ai_task"].payload["message"]["task"]
        assert ended["task_id"] == task_id and ended["status"] == "FAILURE" and "stopped" in ended["error"]
        ids = {d.id for d in rows.values()}
    queued = [json.loads(p.read_text()) for p in (settings.broker_dir / "queue").iterdir()]
    sent = [m for m in queued if m["headers"]["task"] == "vodscribe.deliver_webhook"]
    assert {m["properties"]["delivery_info"]["routing_key"] for m in sent} == {"webhooks"}
    assert {m["headers"]["argsrepr"].strip("[]'") for m in sent} == ids


def test_the_sweep_resends_overdue_deliveries_and_forgets_old_ended_ones(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, webhook_redispatch_after_s=60, webhook_keep_s=3600)
    migrate(settings.db_url)
    now = utcnow()
    with session_scope(settings.db_url) as s:
        client, _ = create_client(s, "a")

        def row(status: str, due: timedelta, ended: timedelta | None = None) -> str:
            d = WebhookDelivery(
                client_id=client.id,
                event="video",
                payload={},
                status=status,
                next_attempt_at=now - due,
                finished_at=None if ended is None else now - ended,
            )
            s.add(d)
            s.flush()
            s.add(WebhookAttempt(delivery_id=d.id, number=1, status_code=200, duration_ms=1))
            return d.id

        lost = row("pending", timedelta(minutes=5))
        waiting = row("pending", timedelta(seconds=10))  # due, its message is on its way
        row("delivered", timedelta(days=2), ended=timedelta(days=2))  # forgotten
        recent = row("failed", timedelta(minutes=5), ended=timedelta(minutes=5))
    assert webhook_delivery.sweep(settings) == [lost]
    assert webhook_delivery.sweep(settings) == []  # sent once: due again from now
    with session_scope(settings.db_url) as s:
        assert {d.id for d in s.query(WebhookDelivery)} == {lost, waiting, recent}
        assert {a.delivery_id for a in s.query(WebhookAttempt)} == {lost, waiting, recent}
    queued = [json.loads(p.read_text()) for p in (settings.broker_dir / "queue").iterdir()]
    assert [m["headers"]["argsrepr"] for m in queued] == [f"['{lost}']"]


# --- a real service and a receiver ------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)
        return event

    @property
    def delivery(self) -> str:
        return self.headers["x-vodscribe-delivery"]


@dataclass
class Receiver:
    """Records every POST; answers the statuses in ``script`` first, then 200 (or hangs, ``hang``)."""

    url: str
    received: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    hang: threading.Event | None = None
    drip: bool = False  # answer a byte every 0.2 s (for 30 s), never finishing the headers in time
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self, kind: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.event["type"] == kind]


def verifies(secret: str, r: Received) -> bool:
    """What a receiver does: recompute the signature over ``"{timestamp}.{body}"``."""
    timestamp = r.headers["x-vodscribe-timestamp"]
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + r.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(r.headers["x-vodscribe-signature"], f"v1={mac}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as state:
        yield state


@contextlib.contextmanager
def receiving() -> Iterator[Receiver]:
    """A :class:`Receiver` on 127.0.0.1 for the block."""
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                state.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                code = state.script.pop(0) if state.script else 200
            if state.hang is not None:
                state.hang.wait(300)  # released when the test ends
            if state.drip:
                for byte in (b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200)[:150]:
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(0.2)
                return
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        if state.hang is not None:
            state.hang.set()
        server.shutdown()
        server.server_close()


def pending_delivery(settings: Settings, url: str) -> str:
    """A client whose webhook is ``url`` (secret ``whsec_x``) and one pending ``video_delete`` delivery."""
    migrate(settings.db_url)
    with session_scope(settings.db_url) as s:
        client, _ = create_client(s, "a")
        s.add(WebhookEndpoint(client_id=client.id, url=url, secret="whsec_x"))
        delivery = WebhookDelivery(
            client_id=client.id, event="video_delete", payload={"type": "video_delete"}
        )
        s.add(delivery)
        s.flush()
        return delivery.id


def test_the_worker_refuses_a_private_address_at_connection_time(tmp_path: Path, receiver: Receiver) -> None:
    """An endpoint whose URL was stored while private addresses were allowed (or whose name now
    resolves to one) is refused by the guarded client as it connects: the receiver gets nothing, the
    attempt is stored with the refusal and retried later."""
    port = int(receiver.url.split(":")[2].split("/")[0])
    settings = Settings(data_dir=tmp_path, fetch_allowed_ports=[port], webhook_backoff_s=30)
    delivery_id = pending_delivery(settings, receiver.url)
    assert deliver(settings, delivery_id) == "retry"
    assert deliver(settings, delivery_id) == "SKIPPED"  # not due again for 30 s
    assert receiver.received == []
    with session_scope(settings.db_url) as s:
        row = s.get(WebhookDelivery, delivery_id)
        assert row is not None and row.status == "pending" and row.attempts == 1
        (attempt,) = s.query(WebhookAttempt).all()
        assert attempt.status_code is None and attempt.error and "127.0.0.1" in attempt.error


def test_one_attempt_posts_the_signed_event_and_ignores_a_redirect(
    tmp_path: Path, receiver: Receiver
) -> None:
    settings = Settings(data_dir=tmp_path, allow_private_urls=True, webhook_max_attempts=1)
    migrate(settings.db_url)
    payload = {"type": "video_delete", "message": {"video": {"id": 1, "slug": "s", "name": "ü"}}}
    with session_scope(settings.db_url) as s:
        client, _ = create_client(s, "a")
        s.add(WebhookEndpoint(client_id=client.id, url=receiver.url, secret="whsec_x"))
        rows = [WebhookDelivery(client_id=client.id, event="video_delete", payload=payload) for _ in range(2)]
        s.add_all(rows)
        s.flush()
        ok, moved = (r.id for r in rows)
    assert deliver(settings, ok) == "delivered"
    assert deliver(settings, ok) == "SKIPPED"
    (got,) = receiver.received
    assert got.delivery == ok and got.event == payload and verifies("whsec_x", got)
    assert got.headers["x-vodscribe-event"] == "video_delete"
    receiver.script = [302]  # a redirect is an answer, not followed: the last attempt fails
    assert deliver(settings, moved) == "failed"
    assert len(receiver.received) == 2


def test_an_attempt_ends_at_its_deadline_however_the_receiver_dribbles(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Every read gets a byte well within the timeout; the attempt as a whole is cut off at it."""
    receiver.drip = True
    settings = Settings(data_dir=tmp_path, allow_private_urls=True, webhook_timeout_s=1, webhook_backoff_s=30)
    delivery_id = pending_delivery(settings, receiver.url)
    assert deliver(settings, delivery_id) == "retry"
    with session_scope(settings.db_url) as s:
        (attempt,) = s.query(WebhookAttempt).all()
        assert attempt.status_code is None and attempt.error == "No answer within 1 s"


@pytest.fixture(scope="module")
def hooks_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """``vodscribe serve`` with short backoffs; an attempt may wait 60 s for a receiver (so one that
    hangs would visibly hold whatever shared its worker), and a delivery 3 s overdue is re-sent."""
    env = {
        "VODSCRIBE_WEBHOOK_BACKOFF_S": "0.2",
        "VODSCRIBE_WEBHOOK_TIMEOUT_S": "60",
        "VODSCRIBE_WEBHOOK_REDISPATCH_AFTER_S": "3",
        "VODSCRIBE_WEBHOOK_MAX_ATTEMPTS": "4",
    }
    svc = start_service(tmp_path_factory.mktemp("hooks"), env)
    yield svc
    stop_service(svc)


@dataclass
class Account:
    api: httpx.Client
    key: str
    secret: str


@pytest.fixture
def account(hooks_service: Service, receiver: Receiver) -> Iterator[Account]:
    """A new client of the service whose webhook points at ``receiver``."""
    key = hooks_service.new_key(f"hooks-{uuid.uuid4().hex[:6]}")
    with httpx.Client(base_url=hooks_service.base_url, headers=hooks_service.headers(key), timeout=30) as api:
        r = api.put("/streaming/webhook", json={"url": receiver.url})
        assert r.status_code == 200, r.text
        yield Account(api, key, r.json()["secret"])


@pytest.fixture(scope="module")
def clip(media_server: MediaServer) -> str:
    """A 3 s 320x240 clip with a tone (an AI transcription task runs on it)."""
    path = tone_video(media_server.root / "webhook-clip.mp4", 3)
    return media_server.url(path.name)


def _delivery(api: httpx.Client, delivery_id: str) -> dict[str, Any]:
    shown = api.get("/streaming/webhook").json()["deliveries"]
    found: dict[str, Any] = next(d for d in shown if d["id"] == delivery_id)
    return found


@pytest.mark.slow
def test_video_events_from_pending_to_ready_then_deletion(
    account: Account, receiver: Receiver, clip: str
) -> None:
    video = account.api.post("/streaming/videos", json={"name": "hooked", "origin_url": clip}).json()

    def statuses() -> list[str]:
        seen = [r.event["message"]["video"]["status"] for r in receiver.events("video")]
        assert {"ready", "viewable"} <= set(seen), seen  # either may arrive last
        return seen

    # Deliveries run side by side, so viewable and ready (committed a moment apart) may arrive in
    # either order; each event carries updated_at for a receiver that needs the order.
    seen = eventually(statuses, timeout=180, what="video events up to ready")
    assert sorted(seen) == ["pending", "ready", "viewable"]
    events = {
        r.event["message"]["video"]["status"]: r.event["message"]["video"] for r in receiver.events("video")
    }
    assert (
        events["pending"]["updated_at"] <= events["viewable"]["updated_at"] <= events["ready"]["updated_at"]
    )
    ready = events["ready"]
    assert ready["id"] == video["id"] and ready["slug"] == video["slug"] and ready["name"] == "hooked"
    assert ready["duration"] and ready["stream_id"] is None
    assert ready["converted_videos"] and all(c["status"] == "complete" for c in ready["converted_videos"])
    assert all(c["mp4_url"].endswith(".mp4") for c in ready["converted_videos"])

    def task_ended() -> Received:
        ended = receiver.events("ai_task")
        assert ended, "no ai_task event yet"
        return ended[0]

    task = eventually(task_ended, timeout=180, what="the AI task's event").event["message"]["task"]
    assert task["video_id"] == video["id"] and task["task_name"] == "transcription"
    assert task["status"] == "SUCCESS"
    assert account.api.get(f"/streaming/ai/tasks/{task['task_id']}").json()["status"] == "SUCCESS"

    assert account.api.delete(f"/streaming/videos/{video['id']}").status_code == 204
    deleted = eventually(lambda: receiver.events("video_delete"), timeout=60, what="video_delete")
    assert deleted[0].event["message"]["video"]["id"] == video["id"]

    assert all(verifies(account.secret, r) for r in receiver.received)
    ids = [r.delivery for r in receiver.received]
    assert len(set(ids)) == len(ids)  # every answer was 200: one POST per event
    shown = account.api.get("/streaming/webhook").json()["deliveries"]
    assert {d["id"] for d in shown} == set(ids) and all(d["status"] == "delivered" for d in shown)


@pytest.mark.slow
def test_a_failing_receiver_gets_the_event_again(account: Account, receiver: Receiver) -> None:
    receiver.script = [500, 500]
    video = account.api.post("/streaming/videos", json={"name": "flaky"}).json()
    assert account.api.delete(f"/streaming/videos/{video['id']}").status_code == 204

    def delivered() -> dict[str, Any]:
        assert len(receiver.received) == 3, len(receiver.received)
        d = _delivery(account.api, receiver.received[0].delivery)
        assert d["status"] == "delivered", d
        return d

    shown = eventually(delivered, timeout=60, what="the third attempt delivered")
    assert {r.delivery for r in receiver.received} == {shown["id"]}  # one delivery id throughout
    assert all(verifies(account.secret, r) for r in receiver.received)
    assert [a["status_code"] for a in shown["attempts"]] == [500, 500, 200]
    assert [a["number"] for a in shown["attempts"]] == [1, 2, 3]
    assert shown["attempts"][0]["error"] == "HTTP 500" and shown["attempts"][2]["error"] is None
    assert shown["type"] == "video_delete" and shown["next_attempt_at"] is None and shown["finished_at"]


@pytest.mark.slow
def test_a_rotated_secret_signs_and_the_old_one_does_not_verify(account: Account, receiver: Receiver) -> None:
    rotated = account.api.post("/streaming/webhook/secret").json()["secret"]
    assert rotated != account.secret
    video = account.api.post("/streaming/videos", json={"name": "rotated"}).json()
    assert account.api.delete(f"/streaming/videos/{video['id']}").status_code == 204
    got = eventually(lambda: receiver.events("video_delete"), timeout=60, what="video_delete")[0]
    assert verifies(rotated, got) and not verifies(account.secret, got)


@pytest.mark.slow
def test_the_reaper_sends_a_delivery_whose_message_was_lost(
    account: Account, receiver: Receiver, hooks_service: Service
) -> None:
    """An outbox row committed without its queue message (as when the process died right after the
    commit): the reaper's sweep sends it once it is overdue."""
    delivery_id = str(uuid.uuid4())
    past = (datetime.now(UTC) - timedelta(minutes=5)).strftime(
        "%Y-%m-%d %H:%M:%S.%f"
    )  # as SQLAlchemy stores it
    payload = {"type": "video_delete", "message": {"video": {"id": 424242, "slug": "x", "name": "lost"}}}
    with sqlite3.connect(hooks_service.data_dir / "vodscribe.db") as db:
        (client_id,) = db.execute(
            "SELECT id FROM clients WHERE key_hash = ?", (hash_key(account.key),)
        ).fetchone()
        db.execute(
            "INSERT INTO webhook_deliveries (id, client_id, event, payload, status, attempts, "
            "next_attempt_at, created_at) VALUES (?, ?, 'video_delete', ?, 'pending', 0, ?, ?)",
            (delivery_id, client_id, json.dumps(payload), past, past),
        )
    got = eventually(lambda: receiver.events("video_delete"), timeout=60, what="the lost delivery")[0]
    assert got.delivery == delivery_id and got.event == payload and verifies(account.secret, got)
    eventually(
        lambda: _delivery(account.api, delivery_id)["status"] == "delivered", timeout=30, what="delivered"
    )


@pytest.mark.slow
def test_a_receiver_that_hangs_does_not_delay_the_video(
    account: Account, receiver: Receiver, clip: str
) -> None:
    """Every POST hangs (each attempt may wait 60 s): were deliveries on the media worker, the three
    status events would hold it for minutes; on their own worker the video is ready meanwhile."""
    receiver.hang = threading.Event()
    video = account.api.post("/streaming/videos", json={"name": "patient", "origin_url": clip}).json()

    def ready() -> bool:
        return bool(account.api.get(f"/streaming/videos/{video['id']}").json()["status"] == "ready")

    eventually(ready, timeout=120, what="the video ready while its receiver hangs")
    shown = account.api.get("/streaming/webhook").json()["deliveries"]
    assert shown and all(d["status"] == "pending" for d in shown)
    assert receiver.received  # the first event is being sent (and waited on) meanwhile


def test_a_client_s_hanging_receiver_does_not_hold_another_client_s_deliveries(
    hooks_service: Service, account: Account, receiver: Receiver
) -> None:
    """Client a's receiver hangs (an attempt may wait 60 s) and a has 16 events under way: they take
    one of the webhook worker's threads, not all four, so client b's event arrives meanwhile."""
    receiver.hang = threading.Event()
    for n in range(16):
        video = account.api.post("/streaming/videos", json={"name": f"hang {n}"}).json()
        assert account.api.delete(f"/streaming/videos/{video['id']}").status_code == 204
    eventually(lambda: receiver.received, timeout=30, what="client a's first event being sent")
    key = hooks_service.new_key(f"fair-{uuid.uuid4().hex[:6]}")
    with (
        receiving() as theirs,
        httpx.Client(base_url=hooks_service.base_url, headers=hooks_service.headers(key), timeout=30) as api,
    ):
        assert api.put("/streaming/webhook", json={"url": theirs.url}).status_code == 200
        video = api.post("/streaming/videos", json={"name": "prompt"}).json()
        assert api.delete(f"/streaming/videos/{video['id']}").status_code == 204
        eventually(lambda: theirs.events("video_delete"), timeout=30, what="client b's event")
        assert not receiver.hang.is_set()  # client a's receiver still holds what it got
    with receiver.lock:
        assert len(receiver.received) == 1  # one of a's at a time: the rest wait their turn


def test_a_worker_with_another_key_leaves_the_delivery_pending(tmp_path: Path) -> None:
    """A webhook worker whose service key differs cannot read the sealed secret: it sends nothing,
    takes no attempt and leaves the delivery pending (the reaper re-sends it, logged each time)."""
    settings = Settings(data_dir=tmp_path)
    delivery_id = pending_delivery(settings, "https://93.184.215.14/hook")
    with session_scope(settings.db_url) as s:
        [endpoint] = s.query(WebhookEndpoint).all()
        endpoint.secret = keys.seal(settings, webhooks.SECRET_PURPOSE, "whsec_x")
    elsewhere = Settings(data_dir=tmp_path / "elsewhere", database_url=settings.db_url)
    assert deliver(elsewhere, delivery_id) == "SKIPPED"
    with session_scope(settings.db_url) as s:
        row = s.get(WebhookDelivery, delivery_id)
        assert row is not None and (row.status, row.attempts) == ("pending", 0)
