"""``/streaming/videos/{id}/subtitles`` (Gcore Streaming API, docs/gcore-api.md §4)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from vodscribe.api.deps import ClientDep, SessionDep, SettingsDep
from vodscribe.api.errors import ApiError
from vodscribe.api.params import SubtitleId, VideoId
from vodscribe.api.route_classes import SubtitleRoute
from vodscribe.api.routers.videos import own_video
from vodscribe.db.tables import Subtitle, Video
from vodscribe.schemas.errors import ErrorBody, StatusErrorBody, responses
from vodscribe.schemas.subtitles import AISubtitlesRequested, SubtitleFieldsIn, SubtitleOut, SubtitleUpdated
from vodscribe.services import subtitles as subs
from vodscribe.services.subtitles import SubtitleError

router = APIRouter(
    prefix="/streaming/videos/{video_id}/subtitles", tags=["Subtitles"], route_class=SubtitleRoute
)

ERRORS = {
    **responses(400, 404, 503, model=StatusErrorBody),
    **responses(401, 429, model=ErrorBody),
}
WRITE_ERRORS = {**ERRORS, **responses(422, model=StatusErrorBody)}


def _error(exc: SubtitleError) -> ApiError:
    return ApiError(exc.status, exc.message, with_status=True)


def _own_subtitle(session: SessionDep, video: Video, subtitle_id: int) -> Subtitle:
    sub = subs.get_subtitle(session, video, subtitle_id)
    if sub is None:
        raise ApiError(404, "Subtitle not found", with_status=True)
    return sub


@router.get("", response_model=list[SubtitleOut], responses=ERRORS)
def list_subtitles(video_id: VideoId, client: ClientDep, session: SessionDep) -> Any:
    """The video's subtitles, oldest first."""
    video = own_video(session, client, video_id)
    return [subs.subtitle_out(s) for s in subs.list_subtitles(session, video)]


@router.post("", response_model=SubtitleOut | AISubtitlesRequested, responses=WRITE_ERRORS)
def create_subtitle(
    video_id: VideoId,
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
    body: SubtitleFieldsIn | None = None,
) -> Any:
    """A subtitle from ``vtt`` (WebVTT or SRT, validated strictly), or AI subtitles with
    ``auto_transcribe_audio_language`` (+ ``auto_translate_subtitles_language``), or (our extension)
    translations of one of the video's subtitles as it is now, with ``source_subtitle_id`` and
    ``auto_translate_subtitles_language``. The AI forms answer right away with the created AI task
    ids; each subtitle is attached when its task succeeds."""
    video = own_video(session, client, video_id)
    f = body or SubtitleFieldsIn()
    try:
        if f.source_subtitle_id is not None or f.auto_transcribe_audio_language:
            subs.use_vocabulary(session, client, video, f.vocabulary, f.vocabulary_id)
        if f.source_subtitle_id is not None:
            tasks = subs.request_subtitle_translation(
                session, settings, client, video, f.source_subtitle_id, f.auto_translate_subtitles_language
            )
            return AISubtitlesRequested(
                language=tasks[0].task_data["audio_language"],
                ai_task_ids=[t.id for t in tasks],
                status="processing",
            )
        if f.auto_transcribe_audio_language:
            plan = subs.parse_ai_plan(f.auto_transcribe_audio_language, f.auto_translate_subtitles_language)
            if plan is None:
                raise SubtitleError('Unprocessable Entity. Use "auto" or a language code to transcribe.')
            tasks = subs.request_ai_subtitles(session, settings, video, plan)
            return AISubtitlesRequested(
                language=plan.audio_language.b if plan.audio_language else None,
                ai_task_ids=[t.id for t in tasks],
                status="processing" if tasks else "scheduled after transcoding",
            )
        sub = subs.create_subtitle(session, settings, video, f)
    except SubtitleError as exc:
        raise _error(exc) from exc
    return subs.subtitle_out(sub)


@router.get("/{subtitle_id}", response_model=SubtitleOut, responses=ERRORS)
def get_subtitle(video_id: VideoId, subtitle_id: SubtitleId, client: ClientDep, session: SessionDep) -> Any:
    video = own_video(session, client, video_id)
    return subs.subtitle_out(_own_subtitle(session, video, subtitle_id))


@router.patch("/{subtitle_id}", response_model=SubtitleUpdated, responses=WRITE_ERRORS)
def update_subtitle(
    video_id: VideoId,
    subtitle_id: SubtitleId,
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
    body: SubtitleFieldsIn | None = None,
) -> Any:
    """Change the fields given; answers without ``id``, as Gcore does."""
    video = own_video(session, client, video_id)
    sub = _own_subtitle(session, video, subtitle_id)
    try:
        subs.update_subtitle(session, settings, video, sub, body or SubtitleFieldsIn())
    except SubtitleError as exc:
        session.rollback()
        raise _error(exc) from exc
    return subs.subtitle_updated(sub)


@router.delete("/{subtitle_id}", status_code=204, response_class=Response, responses=ERRORS)
def delete_subtitle(
    video_id: VideoId, subtitle_id: SubtitleId, client: ClientDep, session: SessionDep, settings: SettingsDep
) -> Response:
    video = own_video(session, client, video_id)
    subs.delete_subtitle(session, settings, video, _own_subtitle(session, video, subtitle_id))
    return Response(status_code=204)
