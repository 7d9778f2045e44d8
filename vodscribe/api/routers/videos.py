"""``/streaming/videos`` and ``/streaming/videos/{id}/subtitles`` (Gcore Streaming API)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse

from vodscribe.api.deps import ClientDep, SessionDep, SettingsDep
from vodscribe.api.errors import ApiError
from vodscribe.config import Settings
from vodscribe.db.models import Client, Video
from vodscribe.db.statuses import VideoStatus
from vodscribe.services import subtitles as subs
from vodscribe.services import videos
from vodscribe.services.subtitles import SubtitleError, SubtitleFields
from vodscribe.services.videos import VideoFields, VideoQuery, VideoValidationError
from vodscribe.storage.media import media_store

router = APIRouter(prefix="/streaming/videos", tags=["Videos"])

_VIDEO_FIELDS = (
    "name",
    "description",
    "origin_url",
    "client_user_id",
    "priority",
    "auto_transcribe_audio_language",
    "auto_translate_subtitles_language",
)
_SUBTITLE_FIELDS = (
    "name",
    "language",
    "vtt",
    "auto_transcribe_audio_language",
    "auto_translate_subtitles_language",
)


def base_url(request: Request, settings: SettingsDep) -> str:
    return (settings.public_url or str(request.base_url)).rstrip("/")


def _rails(errors: dict[str, list[str]]) -> JSONResponse:
    return JSONResponse({"errors": errors}, 422)


def _video_fields(body: dict[str, Any]) -> VideoFields:
    """Typed fields from a JSON body; wrong types become Rails-style errors."""
    errors: dict[str, list[str]] = {}
    f = VideoFields()
    for key in _VIDEO_FIELDS:
        if key not in body:
            continue
        value = body[key]
        integer = key in ("client_user_id", "priority")
        if value is not None and integer and (not isinstance(value, int) or isinstance(value, bool)):
            errors.setdefault(key, []).append("must be an integer")
            continue
        if value is not None and not integer and not isinstance(value, str):
            errors.setdefault(key, []).append("must be a string")
            continue
        setattr(f, key, value)
        f.given.add(key)
    if errors:
        raise VideoValidationError(errors)
    return f


def _own_video(session: SessionDep, client: Client, video_id: int) -> Video:
    video = videos.get_video(session, client, video_id)
    if video is None:
        raise ApiError(404, "Video not found", with_status=True)
    return video


def _detail(session: SessionDep, settings: Settings, video: Video, base: str) -> dict[str, Any]:
    return videos.to_json(video, videos.renditions_of(session, video), base, media_store(settings))


@router.post("", summary='Create a video (body under "video"; a flat body is accepted too)')
def create_video(
    request: Request,
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> Any:
    data = body or {}
    if isinstance(data.get("video"), dict):
        data = data["video"]
    try:
        video = videos.create_video(session, settings, client, _video_fields(data))
    except VideoValidationError as exc:
        return _rails(exc.errors)
    body = _detail(session, settings, video, base_url(request, settings))
    return [body] if settings.video_create_response == "array" else body


@router.get("", summary="List videos (a bare array; page/per_page)")
def list_videos(
    request: Request,
    response: Response,
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=1000)] = 25,
    id: str | None = None,
    search: str | None = None,
    status: str | None = None,
    client_user_id: int | None = None,
) -> Any:
    try:
        ids = tuple(int(x) for x in id.split(",") if x.strip()) if id else ()
    except ValueError as exc:
        raise ApiError(400, '"id" must be a comma-separated list of integers', with_status=True) from exc
    if status is not None and status not in tuple(VideoStatus):
        raise ApiError(400, f"Unknown status {status!r}", with_status=True)
    total, items = videos.list_videos(
        session, client, VideoQuery(page, per_page, ids, search, status, client_user_id)
    )
    response.headers["X-Total-Count"] = str(total)
    base = base_url(request, settings)
    store = media_store(settings)
    renditions = videos.renditions_by_video(session, [v.id for v in items])
    return [videos.to_json(v, renditions.get(v.id, []), base, store, detail=False) for v in items]


@router.get("/{video_id}")
def get_video(
    video_id: int, request: Request, client: ClientDep, session: SessionDep, settings: SettingsDep
) -> Any:
    return _detail(session, settings, _own_video(session, client, video_id), base_url(request, settings))


@router.patch("/{video_id}")
def update_video(
    video_id: int,
    request: Request,
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> Any:
    video = _own_video(session, client, video_id)
    try:
        videos.update_video(session, settings, video, _video_fields(body or {}))
    except VideoValidationError as exc:
        return _rails(exc.errors)
    return _detail(session, settings, video, base_url(request, settings))


@router.delete("/{video_id}", status_code=204)
def delete_video(video_id: int, client: ClientDep, session: SessionDep, settings: SettingsDep) -> Response:
    videos.delete_video(session, settings, _own_video(session, client, video_id))
    return Response(status_code=204)


# --- subtitles ----------------------------------------------------------------------------------------
def _subtitle_fields(body: dict[str, Any]) -> SubtitleFields:
    f = SubtitleFields()
    for key in _SUBTITLE_FIELDS:
        if key in body:
            value = body[key]
            if value is not None and not isinstance(value, str):
                raise SubtitleError(f'Unprocessable Entity. "{key}" must be a string.')
            setattr(f, key, value)
            f.given.add(key)
    return f


def _subtitle_error(exc: SubtitleError) -> ApiError:
    return ApiError(exc.status, exc.message, with_status=True)


@router.get("/{video_id}/subtitles", tags=["Subtitles"])
def list_subtitles(video_id: int, client: ClientDep, session: SessionDep) -> Any:
    video = _own_video(session, client, video_id)
    return [subs.to_json(s) for s in subs.list_subtitles(session, video)]


@router.post("/{video_id}/subtitles", tags=["Subtitles"])
def create_subtitle(
    video_id: int,
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> Any:
    """A subtitle from ``vtt`` (WebVTT or SRT, validated strictly), or AI subtitles with
    ``auto_transcribe_audio_language`` (+ ``auto_translate_subtitles_language``). The AI form answers
    right away with the created AI task ids; each subtitle is attached when its task succeeds."""
    video = _own_video(session, client, video_id)
    try:
        f = _subtitle_fields(body or {})
        if f.auto_transcribe_audio_language:
            plan = subs.parse_ai_plan(f.auto_transcribe_audio_language, f.auto_translate_subtitles_language)
            if plan is None:
                raise SubtitleError('Unprocessable Entity. Use "auto" or a language code to transcribe.')
            tasks = subs.request_ai_subtitles(session, settings, video, plan)
            return {
                "id": None,
                "name": None,
                "language": plan.audio_language.b if plan.audio_language else None,
                "vtt": None,
                "ai_task_ids": [t.id for t in tasks],
                "status": "processing" if tasks else "scheduled after transcoding",
            }
        sub = subs.create_subtitle(session, settings, video, f)
    except SubtitleError as exc:
        raise _subtitle_error(exc) from exc
    return subs.to_json(sub)


@router.get("/{video_id}/subtitles/{subtitle_id}", tags=["Subtitles"])
def get_subtitle(video_id: int, subtitle_id: int, client: ClientDep, session: SessionDep) -> Any:
    video = _own_video(session, client, video_id)
    sub = subs.get_subtitle(session, video, subtitle_id)
    if sub is None:
        raise ApiError(404, "Subtitle not found", with_status=True)
    return subs.to_json(sub)


@router.patch("/{video_id}/subtitles/{subtitle_id}", tags=["Subtitles"])
def update_subtitle(
    video_id: int,
    subtitle_id: int,
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> Any:
    video = _own_video(session, client, video_id)
    sub = subs.get_subtitle(session, video, subtitle_id)
    if sub is None:
        raise ApiError(404, "Subtitle not found", with_status=True)
    try:
        subs.update_subtitle(session, settings, video, sub, _subtitle_fields(body or {}))
    except SubtitleError as exc:
        session.rollback()
        raise _subtitle_error(exc) from exc
    return subs.to_json(sub, with_id=False)


@router.delete("/{video_id}/subtitles/{subtitle_id}", status_code=204, tags=["Subtitles"])
def delete_subtitle(
    video_id: int, subtitle_id: int, client: ClientDep, session: SessionDep, settings: SettingsDep
) -> Response:
    video = _own_video(session, client, video_id)
    sub = subs.get_subtitle(session, video, subtitle_id)
    if sub is None:
        raise ApiError(404, "Subtitle not found", with_status=True)
    subs.delete_subtitle(session, settings, video, sub)
    return Response(status_code=204)
