"""Request and response bodies of ``/streaming/videos/{id}/subtitles`` (Gcore ``subtitle``;
docs/gcore-api.md §4), and a batch item's subtitles."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from vodscribe.schemas.text import LanguageCode, LanguageList, SubtitleName, SubtitleText
from vodscribe.schemas.vocabularies import MAX_TERMS, Terms


class BatchSubtitleIn(BaseModel):
    """A subtitle of a batch item (Gcore ``subtitleBody``: ``language`` and ``vtt`` required),
    checked as ``POST …/subtitles`` checks one."""

    model_config = ConfigDict(extra="ignore")

    name: SubtitleName | None = None
    language: LanguageCode | None = Field(None, description="ISO 639-2/B code (T codes, ISO 639-1 accepted)")
    vtt: SubtitleText | None = Field(None, description="WebVTT or SRT, at most 5 MB")


class SubtitleFieldsIn(BatchSubtitleIn):
    """``POST`` / ``PATCH …/subtitles``: a WebVTT or SRT text in ``vtt``, or AI subtitles with
    ``auto_transcribe_audio_language`` (+ ``auto_translate_subtitles_language``)."""

    auto_transcribe_audio_language: LanguageCode | None = None
    auto_translate_subtitles_language: LanguageList | None = None
    vocabulary: Terms | None = Field(
        None,
        max_length=MAX_TERMS,
        description="Our extension: terms the AI subtitles recognise and translate as written; kept "
        "as the video's vocabulary for its later AI subtitles",
    )
    vocabulary_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Our extension: a saved vocabulary"
    )
    source_subtitle_id: int | None = Field(
        None,
        ge=1,
        description="Our extension: with auto_translate_subtitles_language, translate this subtitle's "
        "text as it is now (corrections included) instead of the recognised speech",
    )


class SubtitleOut(BaseModel):
    id: int
    name: str
    language: str
    vtt: str


class SubtitleUpdated(BaseModel):
    """A PATCH answers without ``id``, as Gcore does."""

    name: str
    language: str
    vtt: str


class AISubtitlesRequested(BaseModel):
    """``POST …/subtitles`` with ``auto_transcribe_audio_language``: each subtitle is attached when its
    AI task succeeds."""

    id: None = None
    name: None = None
    language: str | None
    vtt: None = None
    ai_task_ids: list[str]
    status: str = Field(description='"processing", or "scheduled after transcoding"')
