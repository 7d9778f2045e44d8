"""Video use cases on the API side: create, read, list, update, delete, and the Gcore JSON shape."""

from __future__ import annotations

import logging
import secrets
import string
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from vodscribe import languages
from vodscribe.config import Settings
from vodscribe.db.session import LIKE_ESCAPE, changed, contains
from vodscribe.db.statuses import UNFINISHED, JobState, RenditionStatus, TaskStatus, VideoStatus
from vodscribe.db.tables import AITask, Client, Rendition, Subtitle, Video, utcnow
from vodscribe.errors import URLNotAllowedError
from vodscribe.media.fetch import check_url, parse_headers
from vodscribe.queue import dispatch_video
from vodscribe.schemas.videos import ConvertedVideo, VideoBatchItem, VideoFieldsIn, VideoOut
from vodscribe.services import subtitles, uploads, vocabularies, webhooks
from vodscribe.services.ai_tasks import QUEUE_UNAVAILABLE, iso
from vodscribe.storage.video_files import MediaStore, media_store

log = logging.getLogger(__name__)

_SLUG_ALPHABET = string.ascii_letters + string.digits
#: The fields that say which AI subtitles the media job requests for a video.
AI_PLAN_FIELDS = ("auto_transcribe_audio_language", "auto_translate_subtitles_language")

#: Fields used only by the media job's first download; a PATCH leaves them as they are.
CREATE_ONLY = ("origin_url", "origin_http_headers", "clip_start_seconds", "clip_duration_seconds")


class QueueUnavailable(Exception):
    """The broker refused the job: answered 503, and nothing was kept."""


class VideoValidationError(Exception):
    """Rails-style field errors, answered with 422 ``{"errors": {field: [messages]}}``."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(str(errors))
        self.errors = errors


def _validate(settings: Settings, f: VideoFieldsIn, *, creating: bool) -> dict[str, Any]:
    """The columns to set from the fields the client sent (``model_fields_set``); raises
    VideoValidationError naming each bad field."""
    given = f.model_fields_set
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    if creating or "name" in given:
        if f.name is None or not f.name.strip():
            errors.setdefault("name", []).append("can't be blank")
        elif len(f.name) > 1024:
            errors.setdefault("name", []).append("is too long (maximum is 1024 characters)")
        else:
            values["name"] = f.name.strip()
    if "description" in given:
        values["description"] = f.description
    if "client_user_id" in given:
        values["client_user_id"] = f.client_user_id
    if "priority" in given and f.priority is not None:
        if not -10 <= f.priority <= 10:
            errors.setdefault("priority", []).append("must be between -10 and 10")
        values["priority"] = f.priority
    if f.origin_url:
        try:
            values["origin_url"] = check_url(
                f.origin_url, allow_private=settings.allow_private_urls, ports=settings.fetch_allowed_ports
            )
        except URLNotAllowedError as exc:
            errors.setdefault("origin_url", []).append(exc.message)
    if f.origin_http_headers and f.origin_http_headers.strip():
        try:
            parsed = parse_headers(f.origin_http_headers)
            values["origin_http_headers"] = "\n".join(f"{k}: {v}" for k, v in parsed.items())
        except ValueError as exc:
            errors.setdefault("origin_http_headers", []).append(str(exc))
    _validate_clip(f, values, errors)
    if f.auto_transcribe_audio_language is not None:
        value = f.auto_transcribe_audio_language.strip().lower()
        if value not in ("auto", "disable"):
            try:
                value = languages.resolve(value).b
            except languages.UnknownLanguageError as exc:
                errors.setdefault("auto_transcribe_audio_language", []).append(str(exc))
        values["auto_transcribe_audio_language"] = value
    if f.auto_translate_subtitles_language is not None:
        try:
            targets = languages.parse_language_list(f.auto_translate_subtitles_language)
            values["auto_translate_subtitles_language"] = ",".join(t.b for t in targets) or "disable"
        except languages.UnknownLanguageError as exc:
            errors.setdefault("auto_translate_subtitles_language", []).append(str(exc))
    if errors:
        raise VideoValidationError(errors)
    return values


def _validate_clip(f: VideoFieldsIn, values: dict[str, Any], errors: dict[str, list[str]]) -> None:
    start, duration = f.clip_start_seconds, f.clip_duration_seconds
    if start is not None:
        if start < 0:
            errors.setdefault("clip_start_seconds", []).append("must be greater than or equal to 0")
        values["clip_start_seconds"] = start
    if duration is not None:
        if start is None:  # Gcore: "used only together with clip_start_seconds"
            errors.setdefault("clip_duration_seconds", []).append("can only be used with clip_start_seconds")
        if duration <= 0:
            errors.setdefault("clip_duration_seconds", []).append("must be greater than 0")
        values["clip_duration_seconds"] = duration


def _new_video(client: Client, values: dict[str, Any]) -> Video:
    slug = "".join(secrets.choice(_SLUG_ALPHABET) for _ in range(16))
    video = Video(client_id=client.id, slug=slug, status=VideoStatus.EMPTY, **values)
    if video.origin_url:
        video.job_state = JobState.QUEUED
        video.heartbeat_at = utcnow()
    return video


def _dispatch(session: Session, settings: Settings, videos: list[Video]) -> None:
    """Send the jobs of committed new videos; if the broker refuses one, delete them all and raise
    QueueUnavailable (a job already sent finds its video gone and does nothing)."""
    for video in videos:
        if not video.origin_url:
            continue
        try:
            dispatch_video(settings, video.id)
        except Exception as exc:  # never acknowledge a video whose processing is not queued
            log.exception("could not dispatch video %s", video.id)
            session.execute(delete(Video).where(Video.id.in_([v.id for v in videos])))
            session.commit()
            raise QueueUnavailable(QUEUE_UNAVAILABLE) from exc


def _with_vocabulary(
    session: Session, client: Client, f: VideoFieldsIn, values: dict[str, Any]
) -> dict[str, Any]:
    """``values`` with the video's vocabulary when the fields give one (422 naming the field)."""
    if f.vocabulary is None and f.vocabulary_id is None:
        return values
    try:
        values["vocabulary"] = vocabularies.for_request(session, client, f.vocabulary, f.vocabulary_id)
    except vocabularies.VocabularyError as exc:
        field = "vocabulary_id" if exc.status == 404 else "vocabulary"
        raise VideoValidationError({field: [exc.message]}) from exc
    return values


def create_video(session: Session, settings: Settings, client: Client, f: VideoFieldsIn) -> Video:
    video = _new_video(client, _with_vocabulary(session, client, f, _validate(settings, f, creating=True)))
    session.add(video)
    session.commit()
    _dispatch(session, settings, [video])
    return video


def create_videos(
    session: Session, settings: Settings, client: Client, items: list[VideoBatchItem]
) -> list[Video]:
    """Create every video of a batch with its subtitles, or none: every item is checked first (a
    VideoValidationError names each bad one as ``videos[i].field``), then all are stored in one
    transaction, and only then are their jobs sent."""
    errors: dict[str, list[str]] = {}
    checked: list[tuple[dict[str, Any], list[tuple[str, str, str]]]] = []
    if not items:
        errors["videos"] = ["can't be blank"]
    try:  # before any is parsed: what the request costs is bounded, not only its bytes
        subtitles.check_request_cues([sub.vtt for item in items for sub in item.subtitles or []])
    except subtitles.SubtitleError as exc:
        raise VideoValidationError({"videos": [_plain(exc.message)]}) from None
    for i, item in enumerate(items):
        try:
            values = _with_vocabulary(session, client, item, _validate(settings, item, creating=True))
        except VideoValidationError as exc:
            values = {}
            for name, messages in exc.errors.items():
                errors[f"videos[{i}].{name}"] = messages
        subs: list[tuple[str, str, str]] = []
        for j, sub in enumerate(item.subtitles or []):
            try:
                subs.append(subtitles.checked_new(sub))
            except subtitles.SubtitleError as exc:
                errors[f"videos[{i}].subtitles[{j}]"] = [_plain(exc.message)]
        try:
            subtitles.check_new_room([text for _, _, text in subs])
        except subtitles.SubtitleError as exc:
            errors[f"videos[{i}].subtitles"] = [_plain(exc.message)]
        checked.append((values, subs))
    if errors:
        raise VideoValidationError(errors)
    videos = [_new_video(client, values) for values, _ in checked]
    session.add_all(videos)
    session.flush()
    for video, (_, subs) in zip(videos, checked, strict=True):
        session.add_all(
            Subtitle(video_id=video.id, name=name, language=language, vtt=text)
            for name, language, text in subs
        )
    session.commit()
    _dispatch(session, settings, videos)
    return videos


def _plain(message: str) -> str:
    """A subtitle error's message without Gcore's "Unprocessable Entity. " prefix."""
    return message.removeprefix("Unprocessable Entity. ")


def get_video(session: Session, client: Client, video_id: int) -> Video | None:
    video = session.get(Video, video_id)
    return video if video is not None and video.client_id == client.id else None


def update_video(session: Session, settings: Settings, video: Video, f: VideoFieldsIn) -> Video:
    owner = session.get(Client, video.client_id)
    assert owner is not None  # the video's row cascades with its client's
    values = _with_vocabulary(session, owner, f, _validate(settings, f, creating=False))
    for key in CREATE_ONLY:  # what the download uses: only before transcoding, as on Gcore
        values.pop(key, None)
    if any(key in values and values[key] != getattr(video, key) for key in AI_PLAN_FIELDS):
        video.auto_ai_requested = False  # a new plan: the media job requests it (if it still runs)
    for key, value in values.items():
        setattr(video, key, value)
    video.updated_at = utcnow()
    session.commit()
    return video


def delete_video(session: Session, settings: Settings, video: Video) -> bool:
    """Delete the video, its renditions, subtitles and files; stop its unfinished AI tasks. False if
    a concurrent request deleted it first."""
    now = utcnow()
    revoked = session.scalars(
        update(AITask)
        .where(AITask.video_id == video.id, AITask.status.in_(UNFINISHED))
        .values(status=TaskStatus.REVOKED, completed_at=now, result={"error": "The video was deleted."})
        .returning(AITask.id)
    ).all()
    for task_id in revoked:
        webhooks.record_task(session, settings, task_id)
    key = video.key
    webhooks.record_video_delete(session, settings, video)  # read before the row goes
    deleted = changed(session, delete(Video).where(Video.id == video.id))  # the database cascades
    if not deleted:
        session.rollback()  # a concurrent request deleted it first, and reported it
        return False
    session.commit()
    uploads.end_for_video(settings, video.id)  # its id is never reused, but its uploads must not finish
    media_store(settings).delete(key)
    return True


@dataclass(frozen=True, slots=True)
class VideoQuery:
    page: int = 1
    per_page: int = 25
    ids: tuple[int, ...] = ()
    search: str | None = None
    status: str | None = None
    client_user_id: int | None = None


def list_videos(session: Session, client: Client, q: VideoQuery) -> tuple[int, list[Video]]:
    conditions: list[Any] = [Video.client_id == client.id]
    if q.ids:
        conditions.append(Video.id.in_(q.ids))
    if q.status:
        conditions.append(Video.status == q.status)
    if q.client_user_id is not None:
        conditions.append(Video.client_user_id == q.client_user_id)
    if q.search:
        term = q.search.strip()
        options = [
            Video.slug == term,
            func.lower(Video.name).like(contains(term.lower()), escape=LIKE_ESCAPE),
        ]
        if term.isascii() and term.isdigit() and int(term) < 2**31:
            options.append(Video.id == int(term))
        conditions.append(or_(*options))
    total = session.scalar(select(func.count()).select_from(Video).where(*conditions)) or 0
    stmt = (
        select(Video)
        .where(*conditions)
        .order_by(Video.created_at.desc(), Video.id.desc())
        .offset((q.page - 1) * q.per_page)
        .limit(q.per_page)
    )
    return total, list(session.scalars(stmt))


class ListedRendition(NamedTuple):
    """What a video's answer shows of a rendition: read as plain columns, since a page of 25
    videos has 75 of them and ORM objects cost 1.7 times as much to load (bench/load.py --api)."""

    video_id: int
    id: int
    name: str
    width: int | None
    height: int | None
    size: int | None
    progress: int
    status: str
    error: str | None
    filename: str


_LISTED = tuple(getattr(Rendition, field) for field in ListedRendition._fields)


def renditions_of(session: Session, video: Video) -> list[ListedRendition]:
    return renditions_by_video(session, [video.id]).get(video.id, [])


def renditions_by_video(session: Session, video_ids: list[int]) -> dict[int, list[ListedRendition]]:
    """The renditions of several videos in one query, lowest first."""
    found: dict[int, list[ListedRendition]] = {}
    stmt = select(*_LISTED).where(Rendition.video_id.in_(video_ids)).order_by(Rendition.height)
    for row in session.execute(stmt):
        rendition = ListedRendition._make(row)
        found.setdefault(rendition.video_id, []).append(rendition)
    return found


# --- Gcore's shape ---------------------------------------------------------------------------------
def video_out(
    video: Video, renditions: list[ListedRendition], base_url: str, store: MediaStore, *, detail: bool = True
) -> VideoOut:
    """Gcore's ``videoDetails``; without ``detail`` (a list item) ``iframe_url``, ``sprite`` and
    ``sprite_vtt`` are left unset, so a route that excludes unset fields leaves them out."""

    key = video.key

    def url(relative: str) -> str:
        return store.url(base_url, key, relative)

    screenshot = url(video.screenshot) if video.screenshot else None
    out = VideoOut(
        id=video.id,
        name=video.name,
        description=video.description,
        client_id=video.client_id,
        slug=video.slug,
        status=VideoStatus(video.status),
        error=video.error,
        duration=video.duration_ms,
        origin_video_duration=video.duration_ms,
        origin_size=video.origin_size,
        origin_url=video.origin_url,
        origin_width=video.origin_width,
        origin_height=video.origin_height,
        origin_audio_channels=video.origin_audio_channels,
        created_at=iso(video.created_at),
        updated_at=iso(video.updated_at),
        hls_url=url("master.m3u8"),
        hls_cmaf_url=None,
        dash_url=None,
        converted_videos=[
            ConvertedVideo(
                id=r.id,
                name=r.name,
                width=r.width,
                height=r.height,
                size=r.size,
                progress=r.progress,
                status=RenditionStatus(r.status),
                error=r.error,
                mp4_url=url(r.filename),
            )
            for r in renditions
        ],
        screenshot=screenshot,
        screenshots=[screenshot] if screenshot else [],
        screenshot_id=0 if screenshot else None,
        poster=None,
        poster_thumb=None,
        priority=video.priority,
        client_user_id=video.client_user_id,
        projection="regular",
        views=0,
        cdn_views=0,
        record_type=None,
        stream_id=None,
        directory_id=None,
        quality_set_id=None,
    )
    if detail:
        out.iframe_url = f"{base_url.rstrip('/')}/videos/{key}/embed"
        out.sprite = out.sprite_vtt = None
    return out
