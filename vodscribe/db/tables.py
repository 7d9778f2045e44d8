"""SQLAlchemy 2 tables (the ORM). The application database is the source of truth for task state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vodscribe.db.statuses import JobState, RenditionStatus, TaskStatus, VideoStatus


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Client(Base):
    """An API client (account). Keys are stored as SHA-256 hashes only."""

    __tablename__ = "clients"
    __table_args__ = ({"sqlite_autoincrement": True},)  # ids are never handed out twice (0009)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AITask(Base):
    """One AI task (transcription); ``status`` is a :class:`TaskStatus`."""

    __tablename__ = "ai_tasks"
    __table_args__ = (
        Index("ix_ai_tasks_client_created", "client_id", "created_at"),
        Index("ix_ai_tasks_status_heartbeat", "status", "heartbeat_at"),
        # The list's default order (services.ai_tasks._ordering), so a page is read, not sorted (0011).
        Index("ix_ai_tasks_client_order", "client_id", text("coalesce(started_at, created_at) DESC"), "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    task_name: Mapped[str] = mapped_column(String(32), default="transcription")
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.RECEIVED)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    task_data: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: Last sign of life: the worker's heartbeat while STARTED, the last (re-)dispatch otherwise.
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: Set for tasks on a hosted video (made for it, or given its mp4_url): the worker reads the
    #: rendition from storage; ``attach_subtitle`` tasks also attach their result as a subtitle.
    video_id: Mapped[int | None] = mapped_column(
        ForeignKey("videos.id", ondelete="SET NULL"), nullable=True, index=True
    )
    attach_subtitle: Mapped[bool] = mapped_column(default=False)
    #: A task that should start only once this one has finished (a video's translations wait for its
    #: transcription, then reuse its recognition); sent when it ends, whatever its outcome.
    after_task_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    #: The media a speech request (``/v1/audio/...``, ``/asr``) uploaded: its name in the media store
    #: under the key ``task_{id}``, kept until the task has ended (``services.task_uploads``).
    upload: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    #: The segments recognised so far, for a request that streams them (written with the heartbeat).
    partial: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)


class Video(Base):
    """A hosted video (Gcore ``videoDetails``); ``status`` is a :class:`VideoStatus`. The processing
    job's own state (:class:`JobState`, claim, heartbeat, attempts) is kept beside it in ``job_*``."""

    __tablename__ = "videos"
    __table_args__ = (
        Index("ix_videos_client_created", "client_id", "created_at", "id"),  # the list's order (0011)
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(1024))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    origin_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: ``Name: value`` lines sent with the download of ``origin_url`` (a credential: never shown in
    #: the API nor written to a log).
    origin_http_headers: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Gcore's clip: only this segment of the origin (seconds) is processed.
    clip_start_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    clip_duration_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    client_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    auto_transcribe_audio_language: Mapped[str] = mapped_column(String(16), default="auto")
    auto_translate_subtitles_language: Mapped[str] = mapped_column(String(512), default="disable")
    status: Mapped[str] = mapped_column(String(16), default=VideoStatus.EMPTY)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    origin_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    origin_width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    origin_height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    origin_audio_channels: Mapped[int | None] = mapped_column(Integer, nullable=True)
    has_audio: Mapped[bool | None] = mapped_column(nullable=True)
    screenshot: Mapped[str | None] = mapped_column(String(256), nullable=True)
    #: The AI subtitles of ``auto_transcribe_audio_language`` were requested (set in the transaction
    #: that creates their tasks, so a re-run of the media job never requests them twice); cleared
    #: when a client changes that plan before the job has requested it.
    auto_ai_requested: Mapped[bool] = mapped_column(default=False)
    #: The downloaded origin, kept in the media store under the video's key while its AI tasks may
    #: need it (:mod:`vodscribe.services.video_sources`); None when there is none.
    asr_source: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    #: The file uploaded through TUS (:mod:`vodscribe.services.uploads`), in the media store under
    #: the video's key, that the media job processes instead of downloading ``origin_url``; None when
    #: there is none (never uploaded, or its job has ended).
    uploaded_source: Mapped[str | None] = mapped_column(String(128), nullable=True)
    #: The ``filename`` the uploading client named (shown only; never used as a path).
    upload_filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: The terms its AI tasks recognise and translate as the client writes them (``{term,
    #: translations}`` each, a snapshot of what was given), or None.
    vocabulary: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    job_state: Mapped[str] = mapped_column(String(16), default=JobState.IDLE)
    job_attempts: Mapped[int] = mapped_column(Integer, default=0)
    job_worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def key(self) -> str:
        """``{client_id}_{slug}``: the video's folder and public URL path, as on Gcore."""
        return f"{self.client_id}_{self.slug}"


class Rendition(Base):
    """One transcoded quality (Gcore ``converted_videos[]``)."""

    __tablename__ = "renditions"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bitrate: Mapped[int | None] = mapped_column(Integer, nullable=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=RenditionStatus.PROCESSING)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    filename: Mapped[str] = mapped_column(String(128))


class Subtitle(Base):
    """A subtitle track of a video; AI-made ones remember the task that made them."""

    __tablename__ = "subtitles"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(8))
    vtt: Mapped[str] = mapped_column(Text)
    ai_task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Recognition(Base):
    """What speech recognition found in a file (:class:`vodscribe.speech.stored_recognition.Recognized`), so
    a file is recognised once: keyed by the file's SHA-256, the ASR model and the language hint."""

    __tablename__ = "recognitions"
    __table_args__ = (
        Index("ix_recognitions_key", "media_sha256", "asr_model", "language_hint"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_sha256: Mapped[str] = mapped_column(String(64))
    asr_model: Mapped[str] = mapped_column(String(512))
    language_hint: Mapped[str] = mapped_column(String(16), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class WebhookEndpoint(Base):
    """A client's webhook (vodscribe's extension: Gcore documents no route for it): where events are
    POSTed and the secret that signs them, sealed (:mod:`vodscribe.keys`): signing reads it back."""

    __tablename__ = "webhook_endpoints"

    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)  # None: no events are recorded
    secret: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    """One event in the outbox, written in the transaction of the change it reports; its ``id`` is the
    delivery id receivers deduplicate on. ``status`` is pending, delivered or failed."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_client_created", "client_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: When the next attempt is due; while one runs, when its lease ends (the reaper re-sends a
    #: pending delivery whose time is long past: its message was lost or its worker died).
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: While an attempt is under way, the end of its lease (None otherwise): how many of a client's
    #: deliveries are being sent at once is counted from it.
    sending_until: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WebhookAttempt(Base):
    """One POST of a delivery: the HTTP status, or the error that stopped it."""

    __tablename__ = "webhook_attempts"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)


class Vocabulary(Base):
    """A client's saved vocabulary: terms (``{term, translations}`` each) that requests name by id."""

    __tablename__ = "vocabularies"
    __table_args__ = (
        Index("ix_vocabularies_client_id", "client_id", "id"),
        {"sqlite_autoincrement": True},  # ids are never handed out twice
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    terms: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
