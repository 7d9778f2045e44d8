"""Request and response bodies of ``/streaming/videos`` (Gcore ``createVideo``, ``videoDetails``;
docs/gcore-api.md §3).

Request fields are strict (a number where a string belongs is refused, not converted), as the Gcore
API does; which fields a PATCH changes is what the client sent (``model_fields_set``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from vodscribe.db.statuses import RenditionStatus, VideoStatus
from vodscribe.schemas.subtitles import BatchSubtitleIn
from vodscribe.schemas.text import (
    INT32_MAX,
    INT32_MIN,
    URL,
    Description,
    HeaderLines,
    LanguageCode,
    LanguageList,
    VideoName,
)
from vodscribe.schemas.vocabularies import MAX_TERMS, Terms


class VideoFieldsIn(BaseModel):
    """The writable fields of a video that vodscribe uses; Gcore's other fields are accepted and
    ignored."""

    model_config = ConfigDict(extra="ignore")

    name: VideoName | None = Field(None, description="Required on create")
    description: Description | None = None
    origin_url: URL | None = Field(
        None, description="http(s) URL of the file to download and transcode (checked when given)"
    )
    origin_http_headers: HeaderLines | None = Field(
        None,
        description='Sent with the download of origin_url, to its host only: "Authorization: Bearer '
        'ABC" (one or more "Name: value" lines). Never returned.',
    )
    clip_start_seconds: StrictInt | None = Field(
        None, ge=INT32_MIN, le=INT32_MAX, description="Process only the segment starting here (>= 0)"
    )
    clip_duration_seconds: StrictInt | None = Field(
        None, ge=INT32_MIN, le=INT32_MAX, description="Its length (> 0); only with clip_start_seconds"
    )
    client_user_id: StrictInt | None = Field(None, ge=INT32_MIN, le=INT32_MAX)
    priority: StrictInt | None = Field(None, description="-10 to 10")
    auto_transcribe_audio_language: LanguageCode | None = Field(
        None, description='"auto" (default), "disable" or a language code (ISO 639-2/B)'
    )
    auto_translate_subtitles_language: LanguageList | None = Field(
        None, description='"disable" (default), or comma-separated target language codes'
    )
    vocabulary: Terms | None = Field(
        None,
        max_length=MAX_TERMS,
        description="Our extension: terms its AI subtitles recognise and translate as written (each a "
        'string, or {"term", "translations": {language: text}}); with vocabulary_id, after its terms',
    )
    vocabulary_id: StrictInt | None = Field(
        None, ge=INT32_MIN, le=INT32_MAX, description="Our extension: a saved vocabulary's terms"
    )


class VideoCreate(VideoFieldsIn):
    """``POST /streaming/videos``: Gcore wraps the fields in ``video``; a flat body works too."""

    video: VideoFieldsIn | None = None

    def fields(self) -> VideoFieldsIn:
        return self.video if self.video is not None else self


#: Gcore's limit on one ``POST /streaming/videos/batch``.
MAX_BATCH = 500


class VideoBatchItem(VideoFieldsIn):
    """Gcore ``createVideoBatch``: the fields of ``createVideo``, flat, plus its subtitles."""

    subtitles: list[BatchSubtitleIn] | None = None


class VideoBatchIn(BaseModel):
    """``POST /streaming/videos/batch``: all created, or none (422 naming ``videos[i].field``)."""

    videos: list[VideoBatchItem] | None = Field(None, max_length=MAX_BATCH)


class ConvertedVideo(BaseModel):
    id: int
    name: str
    width: int | None
    height: int | None
    size: int | None
    progress: int
    status: RenditionStatus
    error: str | None
    mp4_url: str


class VideoOut(BaseModel):
    """Gcore's ``videoDetails`` (``iframe_url``, ``sprite`` and ``sprite_vtt`` only on one video, not
    in lists). Fields Gcore has and vodscribe does not use are null or their neutral value."""

    id: int
    name: str
    description: str | None
    client_id: int
    slug: str
    status: VideoStatus
    error: str | None
    duration: int | None = Field(description="Milliseconds")
    origin_video_duration: int | None
    origin_size: int | None
    origin_url: str | None
    origin_width: int | None
    origin_height: int | None
    origin_audio_channels: int | None
    created_at: str | None
    updated_at: str | None
    hls_url: str
    hls_cmaf_url: str | None
    dash_url: str | None
    converted_videos: list[ConvertedVideo]
    screenshot: str | None
    screenshots: list[str]
    screenshot_id: int | None
    poster: str | None
    poster_thumb: str | None
    priority: int
    client_user_id: int | None
    projection: str
    views: int
    cdn_views: int
    record_type: str | None
    stream_id: int | None
    directory_id: int | None
    quality_set_id: int | None
    iframe_url: str | None = None
    sprite: str | None = None
    sprite_vtt: str | None = None


def field_errors_from(errors: list[Any]) -> dict[str, list[str]]:
    """Rails-style ``{field: [message]}`` from pydantic's errors of a video body."""
    out: dict[str, list[str]] = {}
    for err in errors:
        loc = [p for p in err.get("loc", ()) if p not in ("body", "video")]
        field = _key(loc) if loc else "base"
        kind = str(err.get("type", ""))
        if kind == "too_long":
            message = f"is too long (maximum is {err['ctx']['max_length']} items)"
        elif kind == "int_type":
            message = "must be an integer"
        elif kind == "string_type":
            message = "must be a string"
        elif kind == "string_too_long":
            message = f"is too long (maximum is {err['ctx']['max_length']} characters)"
        elif kind in ("less_than_equal", "greater_than_equal"):
            message = "is out of range"
        elif kind in ("list_type", "model_type", "model_attributes_type", "dict_type"):
            message = "must be a list" if kind == "list_type" else "must be a JSON object"
        elif field == "base":
            message = "must be a JSON object"
        else:
            message = str(err.get("msg", "is invalid"))
        out.setdefault(field, []).append(message)
    return out


def _key(loc: list[Any]) -> str:
    """``name``; in a batch ``videos[3].name`` or ``videos[3].subtitles[0].vtt``."""
    key = str(loc[0])
    for part in loc[1:]:
        key += f"[{part}]" if isinstance(part, int) else f".{part}"
    return key
