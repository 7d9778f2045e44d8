"""SQLAlchemy 2 models. The application database is the source of truth for task state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AITask(Base):
    """One AI task (transcription). Status values follow Gcore: RECEIVED, PENDING, STARTED, SUCCESS,
    FAILURE, REVOKED, RETRY."""

    __tablename__ = "ai_tasks"
    __table_args__ = (
        Index("ix_ai_tasks_client_created", "client_id", "created_at"),
        Index("ix_ai_tasks_status_heartbeat", "status", "heartbeat_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    task_name: Mapped[str] = mapped_column(String(32), default="transcription")
    status: Mapped[str] = mapped_column(String(16), default="RECEIVED")
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


UNFINISHED = ("RECEIVED", "PENDING", "STARTED", "RETRY")
FINISHED = ("SUCCESS", "FAILURE", "REVOKED")
