"""The states a row can be in. Stored as their string values, so they compare equal to plain strings
read back from the database and serialise to JSON as Gcore spells them."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """An AI task's ``status`` (Gcore's values)."""

    RECEIVED = "RECEIVED"  # stored, not yet on the queue
    PENDING = "PENDING"  # on the queue
    STARTED = "STARTED"  # a worker runs it (heartbeat_at is its sign of life)
    RETRY = "RETRY"  # back on the queue after an internal error or a lost worker
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"  # cancelled by the user, or its video was deleted


UNFINISHED = (TaskStatus.RECEIVED, TaskStatus.PENDING, TaskStatus.STARTED, TaskStatus.RETRY)
FINISHED = (TaskStatus.SUCCESS, TaskStatus.FAILURE, TaskStatus.REVOKED)


class VideoStatus(StrEnum):
    """A video's ``status`` (Gcore's values)."""

    EMPTY = "empty"  # no file yet, or its download failed (``error`` says why)
    PENDING = "pending"  # downloaded, transcoding
    VIEWABLE = "viewable"  # renditions stored
    READY = "ready"  # HLS and screenshot published
    ERROR = "error"


class JobState(StrEnum):
    """The state of a video's processing job, kept beside its Gcore status."""

    IDLE = "idle"  # nothing to do (no origin)
    QUEUED = "queued"  # on the queue (heartbeat_at: when it was last sent)
    RUNNING = "running"  # a worker runs it (heartbeat_at is its sign of life)
    DONE = "done"


class RenditionStatus(StrEnum):
    """A ``converted_videos[]`` entry's ``status``."""

    PROCESSING = "processing"
    COMPLETE = "complete"
    ERROR = "error"
