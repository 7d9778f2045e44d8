"""Claiming and keeping a job: what AI tasks and video processing runs have in common.

A job is a row with a state, an attempt counter, the worker running it and a heartbeat. A worker
claims it with a conditional update (of two workers handed the same message, one wins), keeps it
alive with a heartbeat, and makes every later write conditional on the row still being its attempt
("ours"), so a job cancelled, deleted or taken over meanwhile is never overwritten. An internal error
puts the job back on the queue until its last attempt. The reaper (:mod:`vodscribe.worker.reaper`)
applies the same rules to what a dead worker left and to queue messages that may be lost.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Update, exists, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from vodscribe import metrics
from vodscribe.db.session import changed, session_scope
from vodscribe.db.statuses import UNFINISHED, JobState, TaskStatus, VideoStatus
from vodscribe.db.tables import AITask, Video, utcnow
from vodscribe.worker.heartbeat import Heartbeat

log = logging.getLogger(__name__)


def worker_name() -> str:
    """Who holds a job: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed by identity
class JobKind:
    """Where a kind of job keeps its state, and what its states mean."""

    label: str  # "task", "video": in logs and failure messages
    metric: str  # its ``kind`` label in the metrics (vodscribe.metrics.AI_TASK, VIDEO)
    model: type[Any]  # AITask or Video
    id: InstrumentedAttribute[Any]
    created: InstrumentedAttribute[datetime]
    state: InstrumentedAttribute[str]
    attempts: InstrumentedAttribute[int]
    worker: InstrumentedAttribute[str | None]
    heartbeat: InstrumentedAttribute[datetime | None]
    claimable: tuple[str, ...]
    running: str
    retry: str
    #: Row values that end a job for good with ``message`` (its last attempt failed).
    give_up: Callable[[str, datetime], dict[str, Any]]
    #: Rows whose queue message may be lost: (now, stale, waited) -> condition.
    lost: Callable[[datetime, datetime, datetime], ColumnElement[bool]]


def _task_lost(now: datetime, stale: datetime, waited: datetime) -> ColumnElement[bool]:
    # RECEIVED: never sent (the broker was down); RETRY: sent back by a worker or the reaper, but
    # not claimed by the time it should have been; PENDING: sent, and nobody took it for a long time
    # (a broker restarted without persistence).
    last_sent = func.coalesce(AITask.heartbeat_at, AITask.created_at)
    awaited = aliased(AITask)
    waiting = exists().where(awaited.id == AITask.after_task_id, awaited.status.in_(UNFINISHED))
    return (
        (AITask.status == TaskStatus.RECEIVED) & (AITask.created_at < stale) & ~waiting
        | (AITask.status == TaskStatus.RETRY) & (AITask.heartbeat_at < stale)
        | (AITask.status == TaskStatus.PENDING) & (last_sent < waited)
    )


def _task_give_up(message: str, now: datetime) -> dict[str, Any]:
    return {"status": TaskStatus.FAILURE, "completed_at": now, "result": {"error": message}}


def _video_lost(now: datetime, stale: datetime, waited: datetime) -> ColumnElement[bool]:
    return (Video.job_state == JobState.QUEUED) & (Video.heartbeat_at < waited)


def _video_give_up(message: str, now: datetime) -> dict[str, Any]:
    return {"job_state": JobState.DONE, "status": VideoStatus.ERROR, "error": message, "updated_at": now}


AI_TASKS = JobKind(
    label="task",
    metric=metrics.AI_TASK,
    model=AITask,
    id=AITask.id,
    created=AITask.created_at,
    state=AITask.status,
    attempts=AITask.attempts,
    worker=AITask.worker,
    heartbeat=AITask.heartbeat_at,
    claimable=(TaskStatus.RECEIVED, TaskStatus.PENDING, TaskStatus.RETRY),
    running=TaskStatus.STARTED,
    retry=TaskStatus.RETRY,
    give_up=_task_give_up,
    lost=_task_lost,
)

VIDEO_JOBS = JobKind(
    label="video",
    metric=metrics.VIDEO,
    model=Video,
    id=Video.id,
    created=Video.created_at,
    state=Video.job_state,
    attempts=Video.job_attempts,
    worker=Video.job_worker,
    heartbeat=Video.heartbeat_at,
    claimable=(JobState.QUEUED,),
    running=JobState.RUNNING,
    retry=JobState.QUEUED,
    give_up=_video_give_up,
    lost=_video_lost,
)


def claim(
    session: Session,
    kind: JobKind,
    row: Any,
    *,
    stale_after_s: float,
    max_attempts: int,
    values: dict[str, Any] | None = None,
) -> int | None:
    """Take ``row`` (as just read) for this worker: its new attempt number, or None when it is not
    ours to run (finished, cancelled, running elsewhere, or claimed by another worker just now).

    A job running under a worker whose heartbeat went stale is taken over too: that is the broker
    redelivering the message of a worker that died (acks_late), ahead of the reaper. ``values`` are
    written in the same update (a task's ``started_at``)."""
    now = utcnow()
    stale = now - timedelta(seconds=stale_after_s)
    state = getattr(row, kind.state.key)
    attempts: int = getattr(row, kind.attempts.key)
    beat = getattr(row, kind.heartbeat.key)
    orphaned = state == kind.running and beat is not None and beat < stale
    if state not in kind.claimable and not orphaned:
        return None
    if orphaned and attempts >= max_attempts:
        return None  # the reaper fails it with a reason
    held: tuple[ColumnElement[bool], ...]
    if orphaned:  # still exactly as the dead worker left it
        held = (kind.state == kind.running, kind.attempts == attempts, kind.heartbeat == beat)
    else:  # a task may turn RECEIVED -> PENDING meanwhile (the API marks it after sending): both are fine
        held = (kind.state.in_(kind.claimable), kind.attempts == attempts)
    updated = changed(
        session,
        update(kind.model)
        .where(kind.id == row.id, *held)
        .values(
            {
                kind.state: kind.running,
                kind.attempts: attempts + 1,
                kind.worker: worker_name(),
                kind.heartbeat: now,
                **(values or {}),
            }
        ),
    )
    if not updated:
        return None
    if orphaned:
        log.warning(
            "%s %s: taking over from lost worker %s", kind.label, row.id, getattr(row, kind.worker.key)
        )
        metrics.REAPED.labels(kind.metric, "taken_over").inc()
    elif attempts == 0:  # the wait a submitter sees: to the first attempt (retries wait on purpose)
        waited = (now - getattr(row, kind.created.key)).total_seconds()
        metrics.JOB_WAIT.labels(kind.metric).observe(max(0.0, waited))
    return attempts + 1


def _held(kind: JobKind, job_id: object, attempt: int) -> tuple[ColumnElement[bool], ...]:
    return (kind.id == job_id, kind.state == kind.running, kind.attempts == attempt)


def ours(kind: JobKind, job_id: object, attempt: int) -> Update:
    """An UPDATE of the job that changes nothing unless it is still this attempt's."""
    return update(kind.model).where(*_held(kind, job_id, attempt))


class JobWatch(Heartbeat):
    """The heartbeat of a claimed job: writes ``heartbeat_at`` every ``beat_s`` and polls every
    ``poll_s`` whether the job is still ours, so a cancel or delete is seen within ``poll_s``.
    Subclasses add their own values to each write with :meth:`values`."""

    def __init__(
        self, db_url: str, kind: JobKind, job_id: object, attempt: int, *, beat_s: float, poll_s: float = 1.0
    ) -> None:
        super().__init__(f"{kind.label}-{job_id}", min(poll_s, beat_s))
        self.db_url, self.kind, self.job_id, self.attempt = db_url, kind, job_id, attempt
        self._beat_s = beat_s
        self._next_beat = time.monotonic() + beat_s  # the claim wrote the first beat

    def values(self) -> dict[str, Any]:
        """Extra values to store with this tick (none by default)."""
        return {}

    def tick(self) -> bool:
        beat = time.monotonic() >= self._next_beat
        values = self.values()
        if beat:
            values[self.kind.heartbeat.key] = utcnow()
        with session_scope(self.db_url) as s:
            if values:
                alive = bool(changed(s, ours(self.kind, self.job_id, self.attempt).values(**values)))
            else:
                held = select(self.kind.id).where(*_held(self.kind, self.job_id, self.attempt))
                alive = s.scalar(held) is not None
        if beat:
            self._next_beat = time.monotonic() + self._beat_s
        return alive


def internal_error(attempt: int, exc: BaseException) -> str:
    """The failure reason of a job whose last attempt hit a bug or an outage (details stay in the log)."""
    return f"Internal error after {attempt} attempts ({type(exc).__name__})."


def retry(
    db_url: str, kind: JobKind, job_id: object, attempt: int, *, dispatch: Callable[[float], None]
) -> bool:
    """Put this attempt's job back on the queue (after a short delay); False if it is no longer ours.

    ``heartbeat_at`` records when it was sent back, so the reaper sends it again if this message is
    lost or cannot be sent at all."""
    with session_scope(db_url) as s:
        updated = changed(
            s, ours(kind, job_id, attempt).values({kind.state: kind.retry, kind.heartbeat: utcnow()})
        )
    if not updated:
        return False
    metrics.RETRIES.labels(kind.metric).inc()
    try:
        dispatch(2.0 * attempt)
    except Exception:
        log.exception("could not send %s %s back to the queue; the reaper will", kind.label, job_id)
    return True


def reap_stale(
    session: Session,
    kind: JobKind,
    *,
    now: datetime,
    stale: datetime,
    max_attempts: int,
    ended: Callable[[Session, Any], None] | None = None,
) -> list[Any]:
    """Jobs whose worker stopped beating: back to the queue, or ended after ``max_attempts`` (then
    ``ended`` is called with the job's id, in the same transaction). Returns the ids to send again."""
    resend: list[Any] = []
    rows = session.scalars(select(kind.model).where(kind.state == kind.running, kind.heartbeat < stale))
    for row in list(rows):
        beat = getattr(row, kind.heartbeat.key)
        attempts = getattr(row, kind.attempts.key)
        held = update(kind.model).where(kind.id == row.id, kind.state == kind.running, kind.heartbeat == beat)
        if attempts >= max_attempts:
            message = f"The worker processing this {kind.label} stopped {attempts} times."
            if changed(session, held.values(kind.give_up(message, now))):
                log.warning("%s %s failed: worker lost %d times", kind.label, row.id, attempts)
                metrics.REAPED.labels(kind.metric, "failed").inc()
                metrics.FAILURES.labels(kind.metric, "lost").inc()
                if ended is not None:
                    ended(session, row.id)
        elif changed(session, held.values({kind.state: kind.retry, kind.heartbeat: now})):
            log.warning(
                "%s %s: worker %s lost, sending it again", kind.label, row.id, getattr(row, kind.worker.key)
            )
            metrics.REAPED.labels(kind.metric, "resent").inc()
            resend.append(row.id)
    return resend


def reap_lost(
    session: Session, kind: JobKind, *, now: datetime, stale: datetime, waited: datetime
) -> list[Any]:
    """Jobs whose queue message may be lost (see :attr:`JobKind.lost`); their ``heartbeat_at`` is
    set to now, the time they are sent again. A duplicate message is harmless: one claim wins."""
    ids = list(session.scalars(select(kind.id).where(kind.lost(now, stale, waited))))
    if ids:
        session.execute(update(kind.model).where(kind.id.in_(ids)).values({kind.heartbeat: now}))
        metrics.REAPED.labels(kind.metric, "lost_message").inc(len(ids))
    return ids


def send_all(kind: JobKind, ids: Sequence[Any], dispatch: Callable[[Any], None]) -> list[Any]:
    """Dispatch each id; returns those that were sent (a failure is logged, the next pass retries)."""
    sent = []
    for job_id in ids:
        try:
            dispatch(job_id)
            sent.append(job_id)
        except Exception:
            log.exception("could not send %s %s again", kind.label, job_id)
    return sent
