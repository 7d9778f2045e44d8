"""``/streaming/videos`` (Gcore Streaming API, docs/gcore-api.md §3)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from vodscribe.api.deps import ClientDep, Read, SessionDep, SettingsDep
from vodscribe.api.errors import ApiError
from vodscribe.api.params import ClientUserId, Page, QueryText, VideoId
from vodscribe.api.responses import model_response, models_response
from vodscribe.api.route_classes import VideoRoute
from vodscribe.config import Settings
from vodscribe.db.statuses import VideoStatus
from vodscribe.db.tables import Client, Video
from vodscribe.schemas.errors import ErrorBody, FieldErrors, StatusErrorBody, responses
from vodscribe.schemas.text import INT32_MAX, INT32_MIN
from vodscribe.schemas.uploads import DirectUploadOut, UploadServer
from vodscribe.schemas.videos import VideoBatchIn, VideoCreate, VideoFieldsIn, VideoOut
from vodscribe.services import uploads, videos
from vodscribe.services.videos import VideoQuery, VideoValidationError
from vodscribe.storage.video_files import media_store

router = APIRouter(prefix="/streaming/videos", tags=["Videos"], route_class=VideoRoute)
#: Its body may be larger than others' (``Settings.max_batch_body_bytes``).
BATCH_PATH = "/streaming/videos/batch"
#: What ``?fields=`` of a batch may keep (Gcore's list).
BATCH_FIELDS = (
    "id", "name", "duration", "status", "created_at", "updated_at", "hls_url", "screenshots",
    "converted_videos", "priority",
)  # fmt: skip

#: What every video route may answer besides its own success.
ERRORS = {
    **responses(400, 404, 503, model=StatusErrorBody),
    **responses(401, 429, model=ErrorBody),
}
WRITE_ERRORS = {**ERRORS, **responses(422, model=FieldErrors)}


def base_url(request: Request, settings: SettingsDep) -> str:
    return (settings.public_url or str(request.base_url)).rstrip("/")


def _only(fields: str | None) -> set[str] | None:
    """The keys ``?fields=`` keeps (None: all); 400 for a name not in :data:`BATCH_FIELDS`."""
    if fields is None or not fields.strip():
        return None
    wanted = {name.strip() for name in fields.split(",") if name.strip()}
    unknown = sorted(wanted - set(BATCH_FIELDS))
    if unknown:
        raise ApiError(
            400,
            f'"fields": unknown field(s) {", ".join(unknown)}; allowed: {", ".join(BATCH_FIELDS)}',
            with_status=True,
        )
    return wanted


def _unprocessable(exc: VideoValidationError) -> Response:
    """Gcore's 422 for video fields: ``{"errors": {field: [messages]}}``."""
    return Response(FieldErrors(errors=exc.errors).model_dump_json(), 422, media_type="application/json")


def own_video(session: SessionDep, client: Client, video_id: int) -> Video:
    video = videos.get_video(session, client, video_id)
    if video is None:
        raise ApiError(404, "Video not found", with_status=True)
    return video


def _detail(session: SessionDep, settings: Settings, video: Video, base: str) -> VideoOut:
    return videos.video_out(video, videos.renditions_of(session, video), base, media_store(settings))


@router.post(
    "",
    summary='Create a video (fields under "video"; a flat body is accepted too)',
    response_model=VideoOut | list[VideoOut],
    response_model_exclude_unset=True,
    responses=WRITE_ERRORS,
)
def create_video(
    request: Request,
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
    body: VideoCreate | None = None,
) -> Any:
    """One Video (``VODSCRIBE_VIDEO_CREATE_RESPONSE=array``: ``[Video]``, for gcore SDKs up to 0.53).
    With ``origin_url`` the file is downloaded and transcoded in a worker."""
    try:
        video = videos.create_video(session, settings, client, body.fields() if body else VideoFieldsIn())
    except VideoValidationError as exc:
        return _unprocessable(exc)
    except videos.QueueUnavailable as exc:
        raise ApiError(503, str(exc), with_status=True) from exc
    detail = _detail(session, settings, video, base_url(request, settings))
    return [detail] if settings.video_create_response == "array" else detail


@router.post(
    "/batch",
    summary="Create up to 500 videos, each with its subtitles, at once (all or none)",
    response_model=list[VideoOut],
    responses=WRITE_ERRORS,
)
def create_videos(
    request: Request,
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
    body: VideoBatchIn,
    fields: Annotated[
        str | None,
        Query(max_length=512, description="Comma list of the keys to return: " + ", ".join(BATCH_FIELDS)),
    ] = None,
) -> Any:
    """Gcore's ``createVideoBatch`` items (the fields of ``POST /streaming/videos``, flat, plus
    ``subtitles: [{name?, language, vtt}]``, checked as ``POST …/subtitles`` checks one). Nothing is
    created unless every item is valid: 422 ``{"errors": {"videos[3].name": [...]}}``. Always an
    array, in the order given."""
    only = _only(fields)
    try:
        created = videos.create_videos(session, settings, client, body.videos or [])
    except VideoValidationError as exc:
        return _unprocessable(exc)
    except videos.QueueUnavailable as exc:
        raise ApiError(503, str(exc), with_status=True) from exc
    base, store = base_url(request, settings), media_store(settings)
    # New videos have no renditions yet: no query for them.
    details = [videos.video_out(v, [], base, store) for v in created]
    if only is None:
        return details
    return JSONResponse([d.model_dump(mode="json", include=only) for d in details])


@router.get(
    "",
    summary="List videos (a bare array; page/per_page)",
    response_model=list[VideoOut],
    response_model_exclude_unset=True,
    responses=ERRORS,
)
async def list_videos(
    request: Request,
    read: Read,
    settings: SettingsDep,
    page: Page = 1,
    per_page: Annotated[int, Query(ge=1, le=1000)] = 25,
    id: Annotated[str | None, Query(max_length=8192, description="Comma-separated video ids")] = None,
    search: QueryText = None,
    status: VideoStatus | None = None,
    client_user_id: ClientUserId = None,
) -> Response:
    """Newest first; ``X-Total-Count`` holds the number of videos matching."""
    base, store = base_url(request, settings), media_store(settings)

    def work(session: Session, client: Client) -> Response:
        try:  # after the client's lookup: a request without a valid key learns nothing else
            ids = tuple(int(x) for x in id.split(",") if x.strip()) if id else ()
            if any(not INT32_MIN <= i <= INT32_MAX for i in ids):
                raise ValueError("out of range")
        except ValueError as exc:
            raise ApiError(400, '"id" must be a comma-separated list of integers', with_status=True) from exc
        query = VideoQuery(page, per_page, ids, search, status, client_user_id)
        total, items = videos.list_videos(session, client, query)
        renditions = videos.renditions_by_video(session, [v.id for v in items])
        listed = [videos.video_out(v, renditions.get(v.id, []), base, store, detail=False) for v in items]
        return models_response(VideoOut, listed, headers={"X-Total-Count": str(total)})

    return await read(work)


@router.get(
    "/{video_id}",
    response_model=VideoOut,
    response_model_exclude_unset=True,
    responses=ERRORS,
)
async def get_video(video_id: VideoId, request: Request, read: Read, settings: SettingsDep) -> Response:
    """One video with its renditions, HLS and embed URLs."""
    base = base_url(request, settings)

    def work(session: Session, client: Client) -> Response:
        return model_response(_detail(session, settings, own_video(session, client, video_id), base))

    return await read(work)


@router.patch(
    "/{video_id}", response_model=VideoOut, response_model_exclude_unset=True, responses=WRITE_ERRORS
)
def update_video(
    video_id: VideoId,
    request: Request,
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
    body: VideoFieldsIn | None = None,
) -> Any:
    """Change the fields given (``origin_url`` only counts before a video is transcoded)."""
    video = own_video(session, client, video_id)
    try:
        videos.update_video(session, settings, video, body or VideoFieldsIn())
    except VideoValidationError as exc:
        return _unprocessable(exc)
    return _detail(session, settings, video, base_url(request, settings))


@router.delete("/{video_id}", status_code=204, response_class=Response, responses=ERRORS)
def delete_video(
    video_id: VideoId, client: ClientDep, session: SessionDep, settings: SettingsDep
) -> Response:
    """Delete the video, its files and subtitles; its unfinished AI tasks are cancelled."""
    if not videos.delete_video(session, settings, own_video(session, client, video_id)):
        raise ApiError(404, "Video not found", with_status=True)
    return Response(status_code=204)


@router.get(
    "/{video_id}/upload",
    summary="Parameters for uploading the video's file from a computer with a TUS client",
    response_model=DirectUploadOut,
    responses={**ERRORS, **responses(409, model=StatusErrorBody)},
)
def get_upload_parameters(
    video_id: VideoId, request: Request, client: ClientDep, session: SessionDep, settings: SettingsDep
) -> DirectUploadOut:
    """Gcore's direct upload: send the file to ``{scheme}://{servers[0].hostname}/upload/`` with the
    TUS metadata ``filename``, ``token``, ``video_id`` and ``client_id``. The token is valid for this
    video only, for ``VODSCRIBE_UPLOAD_TOKEN_TTL_S`` seconds. 409 for a video that has an
    ``origin_url`` or already has its file."""
    video = own_video(session, client, video_id)
    try:
        uploads.check_uploadable(video)
    except uploads.UploadError as exc:
        raise ApiError(exc.status, exc.message, with_status=True) from exc
    base = base_url(request, settings)
    return DirectUploadOut(
        servers=[UploadServer(id=1, hostname=urlsplit(base).netloc)],
        token=uploads.issue_token(settings, client.id, video.id),
        video=_detail(session, settings, video, base),
    )
