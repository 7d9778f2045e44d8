"""AI task use cases on the API side: create, read, list, cancel, and Gcore's task body."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import String, cast, func, or_, select, update
from sqlalchemy.orm import Session, defer
from sqlalchemy.sql.elements import ColumnElement

from vodscribe import languages
from vodscribe.config import Settings
from vodscribe.db.session import LIKE_ESCAPE, changed, contains
from vodscribe.db.statuses import FINISHED, UNFINISHED, TaskStatus
from vodscribe.db.tables import AITask, Client, Video, utcnow
from vodscribe.errors import URLNotAllowedError
from vodscribe.media.fetch import check_url
from vodscribe.queue import dispatch_transcription
from vodscribe.schemas.ai_tasks import (
    AITaskCreate,
    AITaskOut,
    FailureResult,
    ProcessingTime,
    TaskData,
    TranscriptionResult,
)
from vodscribe.services import task_uploads, video_sources, vocabularies, webhooks
from vodscribe.speech.subtitle_formats import InvalidSubtitlesError, parse_subtitles
from vodscribe.storage.video_files import media_store
from vodscribe.storage.workspace import incoming_folder

log = logging.getLogger(__name__)

ORDERING_FIELDS = ("task_id", "status", "task_name", "started_at")


class TaskError(Exception):
    """A request the service refuses; ``status`` is the HTTP code the API answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _language(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        return languages.resolve(value).b
    except languages.UnknownLanguageError as exc:
        raise TaskError(str(exc)) from exc


def create_transcription(
    session: Session,
    settings: Settings,
    client: Client,
    req: AITaskCreate,
    own_bases: Sequence[str] = (),
) -> AITask:
    """Validate, store (RECEIVED), then dispatch (PENDING). Fetching happens in the worker.

    The ``mp4_url`` of a video hosted here is read from storage, not fetched: it would otherwise be
    refused as a private address in the embedded default (and it is one hop less anyway). With
    ``vtt`` instead of ``url`` (our extension), the task translates that text
    (:func:`create_text_translation`)."""
    vocabulary = _vocabulary(session, client, req)
    if req.vtt is not None:
        if req.url is not None:
            raise TaskError('Give either "url" or "vtt", not both.')
        source, target = _language(req.audio_language), _language(req.subtitles_language)
        if source is None or target is None:
            raise TaskError('A "vtt" task needs "audio_language" (the text\'s) and "subtitles_language".')
        return create_text_translation(
            session,
            settings,
            client,
            req.vtt,
            TaskData(
                url="vtt",
                audio_language=source,
                subtitles_language=target,
                client_user_id=req.client_user_id,
                client_entity_data=req.client_entity_data,
                vocabulary=vocabulary,
            ),
        )
    if req.url is None:
        raise TaskError('"url" is not specified')
    video_id = own_video_id(session, req.url.strip(), own_bases)
    if video_id is not None:
        url = req.url.strip()
    else:
        try:
            url = check_url(
                req.url, allow_private=settings.allow_private_urls, ports=settings.fetch_allowed_ports
            )
        except URLNotAllowedError as exc:
            raise TaskError(exc.message) from exc
    audio_language = _language(req.audio_language)
    subtitles_language = _language(req.subtitles_language)
    check_queue(session, settings, client)
    data = TaskData(
        url=url,
        audio_language=audio_language,
        subtitles_language=subtitles_language,
        client_user_id=req.client_user_id,
        client_entity_data=req.client_entity_data,
        client_id=client.id,
        vocabulary=vocabulary,
    )
    task = AITask(
        client_id=client.id,
        task_name="transcription",
        status=TaskStatus.RECEIVED,
        task_data=data.stored(),
        video_id=video_id,
    )
    session.add(task)
    session.commit()
    if not send(session, settings, task):  # never acknowledge a task that is not on the queue
        withdraw(session, [task])
        raise TaskError(QUEUE_UNAVAILABLE, 503)
    return task


def _vocabulary(session: Session, client: Client, req: AITaskCreate) -> list[dict[str, Any]] | None:
    try:
        return vocabularies.for_request(session, client, req.vocabulary, req.vocabulary_id)
    except vocabularies.VocabularyError as exc:
        raise TaskError(exc.message) from exc  # bad input of this request: 400, as on every AI route


class QueueFull(TaskError):
    """The client has as many unfinished tasks as it may (``task_queue_limit``)."""


def check_queue(session: Session, settings: Settings, client: Client) -> None:
    unfinished = session.scalar(
        select(func.count(AITask.id)).where(AITask.client_id == client.id, AITask.status.in_(UNFINISHED))
    )
    if (unfinished or 0) >= settings.task_queue_limit:
        raise QueueFull(f"Queue limit reached ({settings.task_queue_limit}), try later.")


def create_text_translation(
    session: Session,
    settings: Settings,
    client: Client,
    text: str,
    data: TaskData,
    *,
    video_id: int | None = None,
) -> AITask:
    """A task that translates the subtitle ``text`` (WebVTT or SRT, in ``data``'s audio language)
    into ``data``'s subtitles language; with ``video_id``, attached to that video as a subtitle.
    The text is kept with the task as an upload is (a list of tasks need not carry it)."""
    try:
        cues = parse_subtitles(text)
    except InvalidSubtitlesError as exc:
        raise TaskError(f"The subtitle text is not valid: {exc}") from exc
    if not cues:
        raise TaskError("The subtitle text has no cues to translate.")
    if data.audio_language == data.subtitles_language:
        raise TaskError("The subtitle is in that language already.")
    path = incoming_folder(settings.work_dir) / f"{uuid.uuid4().hex}.vtt"
    path.write_text(text, encoding="utf-8")
    try:
        return create_from_upload(
            session,
            settings,
            client,
            path,
            data.model_copy(update={"from_text": True}),
            video_id=video_id,
            attach_subtitle=video_id is not None,
        )
    finally:
        path.unlink(missing_ok=True)


def create_from_upload(
    session: Session,
    settings: Settings,
    client: Client,
    path: Path,
    data: TaskData,
    *,
    video_id: int | None = None,
    attach_subtitle: bool = False,
) -> AITask:
    """A transcription task of a file the request uploaded (``path``, in the API's scratch space):
    the file goes into the media store first, so no worker ever sees the task without it, then the
    task is stored and sent. ``data`` says what to do; its languages must be resolved already."""
    check_queue(session, settings, client)
    task_id = str(uuid.uuid4())
    name = task_uploads.store(settings, task_id, path)
    task = AITask(
        id=task_id,
        client_id=client.id,
        task_name="transcription",
        status=TaskStatus.RECEIVED,
        task_data=data.model_copy(update={"client_id": client.id}).stored(),
        upload=name,
        video_id=video_id,
        attach_subtitle=attach_subtitle,
    )
    try:
        session.add(task)
        session.commit()
    except BaseException:
        session.rollback()
        media_store(settings).delete(task_uploads.key(task_id))
        raise
    if not send(session, settings, task):
        withdraw(session, [task])
        media_store(settings).delete(task_uploads.key(task_id))
        raise TaskError(QUEUE_UNAVAILABLE, 503)
    return task


_OWN_MEDIA = re.compile(r"/videos/(\d+)_([A-Za-z0-9]+)/vod\d+p\.mp4")


def own_video_id(session: Session, url: str, bases: Sequence[str]) -> int | None:
    """The id of the hosted video whose rendition ``url`` is (``{base}/videos/{client}_{slug}/vodNp.mp4``
    on one of this service's ``bases``), else None."""
    for base in bases:
        root = base.rstrip("/")
        if url.startswith(root + "/") and (m := _OWN_MEDIA.fullmatch(url[len(root) :])):
            video = session.scalar(select(Video).where(Video.slug == m.group(2)))
            if video is not None and str(video.client_id) == m.group(1):
                return video.id
    return None


QUEUE_UNAVAILABLE = "The task queue is unavailable; try again later."


def send(session: Session, settings: Settings, task: AITask) -> bool:
    """Put the task on the queue and mark it PENDING; False if the broker refused it (the task stays
    RECEIVED, which the reaper sends again, unless the caller withdraws it)."""
    try:
        dispatch_transcription(settings, task.id)
    except Exception:
        log.exception("could not dispatch task %s", task.id)
        return False
    session.execute(
        update(AITask)
        .where(AITask.id == task.id, AITask.status == TaskStatus.RECEIVED)
        .values(status=TaskStatus.PENDING)
    )
    session.commit()
    session.refresh(task)
    return True


def release_waiting(session: Session, settings: Settings, task_id: str) -> list[str]:
    """Send the tasks that waited for ``task_id`` to end (it just did); returns their ids. One that
    cannot be sent stays RECEIVED, and the reaper sends it."""
    waiting = list(
        session.scalars(
            select(AITask).where(AITask.after_task_id == task_id, AITask.status == TaskStatus.RECEIVED)
        )
    )
    return [task.id for task in waiting if send(session, settings, task)]


def withdraw(session: Session, tasks: Sequence[AITask]) -> None:
    """Delete tasks the client is about to be told were not accepted (a message already sent for
    one of them then finds no task and is dropped)."""
    for task in tasks:
        session.delete(task)
    session.commit()


_TASK_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def get_task(session: Session, client: Client, task_id: str) -> AITask | None:
    if not _TASK_ID.fullmatch(task_id):  # no such id is ever made (and PostgreSQL refuses NUL)
        return None
    task = session.get(AITask, task_id)
    if task is None or task.client_id != client.id:
        return None
    return task


def cancel_task(session: Session, settings: Settings, client: Client, task_id: str) -> AITask:
    """Move an unfinished task to REVOKED; the worker notices and stops (cooperative cancel)."""
    task = get_task(session, client, task_id)
    if task is None:
        raise TaskError("Task not found", 404)
    now = utcnow()
    updated = changed(
        session,
        update(AITask)
        .where(AITask.id == task_id, AITask.status.in_(UNFINISHED))
        .values(
            status=TaskStatus.REVOKED, completed_at=now, result={"error": "Task was cancelled by the user."}
        ),
    )
    if updated:
        webhooks.record_task(session, settings, task_id)
    session.commit()
    session.refresh(task)
    if not updated:
        raise TaskError(f"Cannot cancel task because it is already in status {task.status}.", 412)
    release_waiting(session, settings, task.id)  # translations that waited for it run on their own
    if task.upload is not None:  # nobody else would, for a task no worker has taken yet
        task_uploads.release(settings, task.id)
    if task.video_id is not None:  # a task cancelled before a worker took it: nobody else would
        video_sources.release(settings, task.video_id)
    return task


@dataclass(frozen=True, slots=True)
class ListQuery:
    page: int = 1
    limit: int = 10
    task_id: str | None = None
    task_name: str | None = None
    status: str | None = None
    date_created: str | None = None
    ordering: str | None = None
    search: str | None = None


def list_tasks(session: Session, client: Client, q: ListQuery) -> tuple[int, list[AITask]]:
    if q.page < 1 or q.limit < 1:
        raise TaskError('"page" and "limit" must be positive integers.')
    conditions: list[ColumnElement[bool]] = [AITask.client_id == client.id]
    if q.task_id:
        conditions.append(AITask.id == q.task_id.strip().lower())
    if q.task_name:
        conditions.append(AITask.task_name == q.task_name)
    if q.status:
        status = q.status.upper()
        if status not in TaskStatus.__members__:
            raise TaskError(f"Unknown status {q.status!r}; use one of {', '.join(TaskStatus)}.")
        conditions.append(AITask.status == TaskStatus(status))
    if q.date_created:
        conditions.extend(_date_conditions(q.date_created))
    if q.search:
        pattern = contains(q.search.lower())
        conditions.append(
            or_(
                func.lower(AITask.id).like(pattern, escape=LIKE_ESCAPE),
                func.lower(AITask.task_name).like(pattern, escape=LIKE_ESCAPE),
                func.lower(AITask.status).like(pattern, escape=LIKE_ESCAPE),
                func.lower(cast(AITask.task_data, String)).like(pattern, escape=LIKE_ESCAPE),
            )
        )
    total = session.scalar(select(func.count()).select_from(AITask).where(*conditions)) or 0
    stmt = (
        select(AITask)
        .options(defer(AITask.result), defer(AITask.partial))  # a list answers no results: not read
        .where(*conditions)
        .order_by(*_ordering(q.ordering))
        .offset((q.page - 1) * q.limit)
        .limit(q.limit)
    )
    return total, list(session.scalars(stmt))


def _date_conditions(value: str) -> list[ColumnElement[bool]]:
    """``date_created`` is a date (that whole UTC day) or an ISO 8601 datetime (that second)."""
    text = value.strip().replace("Z", "+00:00")
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            start = datetime.fromisoformat(text + "T00:00:00+00:00")
            end = datetime.fromisoformat(text + "T23:59:59.999999+00:00")
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.now().astimezone().tzinfo)
            start = moment.replace(microsecond=0)
            end = start.replace(microsecond=999999)
    except ValueError as exc:
        raise TaskError(f'"date_created" is not an ISO 8601 date or datetime: {value!r}') from exc
    return [AITask.created_at >= start, AITask.created_at <= end]


def _ordering(value: str | None) -> list[Any]:
    started = func.coalesce(AITask.started_at, AITask.created_at)
    if not value:
        return [started.desc(), AITask.id]
    descending = value.startswith("-")
    name = value.lstrip("-")
    columns = {
        "task_id": AITask.id,
        "status": AITask.status,
        "task_name": AITask.task_name,
        "started_at": started,
    }
    if name not in columns:
        raise TaskError(f"Unknown ordering {value!r}; use one of {', '.join(ORDERING_FIELDS)}.")
    column = columns[name]
    return [column.desc() if descending else column.asc(), AITask.id]


# --- JSON shape ------------------------------------------------------------------------------------
def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"  # a fifth of strftime's cost


def task_out(task: AITask, *, with_result: bool) -> AITaskOut:
    """Gcore's task body; ``result`` is set only with ``with_result`` and once the task has ended, so
    an answer that leaves out unset fields leaves it out otherwise."""
    total = None
    if task.started_at is not None and task.completed_at is not None:
        total = round((task.completed_at - task.started_at).total_seconds(), 3)
    out = AITaskOut(
        task_id=task.id,
        task_name=task.task_name,
        status=TaskStatus(task.status),
        progress=task.progress,
        processing_time=ProcessingTime(
            started_at=iso(task.started_at), completed_at=iso(task.completed_at), total_time_sec=total
        ),
        task_data=TaskData.model_validate(task.task_data),
    )
    if with_result and task.status in FINISHED and task.result is not None:
        succeeded = task.status == TaskStatus.SUCCESS
        out.result = (TranscriptionResult if succeeded else FailureResult).model_validate(task.result)
    return out
