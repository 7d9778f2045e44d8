"""Public media URLs, as a CDN would serve them: ``/videos/{client_id}_{slug}/...`` (renditions, HLS,
subtitles, screenshot) and the embed player page. The unguessable slug is the capability, as on Gcore."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from vodscribe import languages
from vodscribe.api.deps import SessionDep, SettingsDep
from vodscribe.api.embed import EmbedSubtitle, embed_csp, render_embed_page
from vodscribe.db.tables import Video
from vodscribe.schemas.errors import ErrorBody
from vodscribe.services.subtitles import list_tracks
from vodscribe.storage.video_files import LocalStore, cache_control, content_type, media_store

router = APIRouter(tags=["Media"])

#: A query parameter of the wrong type: JSON, although the page itself is HTML.
BAD_PARAMETER: dict[str, Any] = {
    "description": "A parameter is not valid",
    "content": {"application/json": {"schema": ErrorBody.model_json_schema()}},
}

#: What is public in a video's folder (not hls.json, not the lock file).
SERVED = (".m3u8", ".ts", ".mp4", ".vtt", ".jpg")


#: ``{client_id}_{slug}``: anything else names no video (and never reaches the database).
_KEY = re.compile(r"[0-9]{1,10}_[A-Za-z0-9]{1,32}")
#: A file inside a video's folder: a few plain path segments, none hidden.
_FILE = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,127}/){0,3}[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def _video(session: SessionDep, key: str) -> Video:
    if not _KEY.fullmatch(key):
        raise HTTPException(404)
    client_id, _, slug = key.partition("_")
    video = session.scalar(select(Video).where(Video.slug == slug))
    if video is None or str(video.client_id) != client_id:
        raise HTTPException(404)
    return video


@router.get(
    "/videos/{key}/embed",
    response_class=HTMLResponse,
    summary="Embed player page (iframe_url)",
    responses={404: {"description": "No such video"}, 400: BAD_PARAMETER},
)
def embed(
    key: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    sub_lang: str | None = None,
    autoplay: bool = False,
    muted: bool = False,
) -> Any:
    """The player page; ``?sub_lang=en`` picks the subtitle (Gcore), ``?autoplay=1&muted=1`` starts it."""
    video = _video(session, key)
    tracks = []
    for i, (_, name, code) in enumerate(list_tracks(session, video)):  # names only, not the texts
        lang = languages.resolve(code)
        tracks.append(EmbedSubtitle(label=name, language=lang.iso1 or lang.b, default=i == 0))
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    hls_url = f"{base}/videos/{video.key}/master.m3u8"
    poster = f"{base}/videos/{video.key}/{video.screenshot}" if video.screenshot else None
    html = render_embed_page(
        title=video.name,
        hls_url=hls_url,
        subtitles=tracks,
        poster_url=poster,
        sub_lang=sub_lang,
        autoplay=autoplay,
        muted=muted,
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": embed_csp(hls_url, poster)})


FILE_ANSWERS: dict[int | str, Any] = {
    200: {"description": "The file (MP4, HLS playlist or segment, WebVTT, JPEG)"},
    206: {"description": "Part of the file (a Range request)"},
    302: {"description": "Where the file is, with S3 storage"},
    400: BAD_PARAMETER,
    404: {"description": "No such video or file"},
    416: {"description": "The range is outside the file"},
}


@router.get(
    "/videos/{key}/{path:path}",
    summary="Video files (range requests)",
    response_class=FileResponse,
    responses=FILE_ANSWERS,
    operation_id="video_file",
)
@router.head("/videos/{key}/{path:path}", include_in_schema=False, operation_id="video_file_head")
def video_file(key: str, path: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    video = _video(session, key)
    if not _FILE.fullmatch(path) or Path(path).suffix.lower() not in SERVED:
        raise HTTPException(404)
    store = media_store(settings)
    file = store.local_file(video.key, path)
    if file is None:
        if isinstance(store, LocalStore):
            raise HTTPException(404)
        return RedirectResponse(store.url(str(request.base_url), video.key, path), status_code=302)
    headers = {"Cache-Control": cache_control(path), "Access-Control-Allow-Origin": "*"}
    return FileResponse(file, media_type=content_type(path), headers=headers)
