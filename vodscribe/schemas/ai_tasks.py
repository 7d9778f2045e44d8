"""Request and response bodies of the AI task API (Gcore ``ai_transcribe`` / ``ai_results``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vodscribe import languages
from vodscribe.db.statuses import TaskStatus
from vodscribe.schemas.text import URL, ClientUserIdText, EntityData, LanguageCode, SubtitleText, TaskName
from vodscribe.schemas.vocabularies import MAX_TERMS, Terms


class AITaskCreate(BaseModel):
    """``POST /streaming/ai/tasks``. ``task_name`` defaults to ``transcription`` when absent (the
    Gcore docs' own "modes" examples omit it)."""

    model_config = ConfigDict(extra="ignore")

    task_name: Literal["transcription", "content-moderation"] = "transcription"
    url: URL | None = Field(None, description="URL of the MP4 (or audio) file, reachable over HTTP/HTTPS")
    vtt: SubtitleText | None = Field(
        None,
        description="Our extension, instead of url: a subtitle's text (WebVTT or SRT) in audio_language, "
        "translated into subtitles_language as written (a person's corrections included).",
    )
    audio_language: LanguageCode | None = Field(None, description="ISO 639-2/B code; omitted = auto-detect")
    subtitles_language: LanguageCode | None = Field(None, description="Target language (ISO 639-2/B)")
    client_user_id: ClientUserIdText | None = None
    client_entity_data: EntityData | None = None
    category: TaskName | None = None
    vocabulary: Terms | None = Field(
        None,
        max_length=MAX_TERMS,
        description="Our extension: terms recognised and translated as written (each a string, or "
        '{"term", "translations": {language: text}}); with vocabulary_id, after its terms',
    )
    vocabulary_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Our extension: a saved vocabulary"
    )


class Stored(BaseModel):
    """A shape kept as JSON in the database: what is None is left out (and so out of the answer)."""

    def stored(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class TaskData(Stored):
    """What an AI task was asked to do: stored as ``ai_tasks.task_data``, read back by the worker and
    the subtitle attachment, shown as Gcore's ``task_data``. Made by the service from an
    :class:`AITaskCreate` or a video's AI plan, with the languages already resolved to their ISO
    639-2/B codes."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    task_name: Literal["transcription"] = "transcription"
    url: str = Field(description="The media read: the client's URL, or a hosted video's rendition")
    audio_language: str | None = Field(None, description="The spoken language as given; None = identified")
    subtitles_language: str | None = Field(None, description="The language the subtitles are translated into")
    client_user_id: str | None = None
    client_entity_data: str | None = None
    client_id: int | None = None
    # What a speech request (``/v1/audio/...``, ``/asr``) asks beyond Gcore's fields; None elsewhere,
    # so a Gcore task's data is as before.
    model: str | None = Field(None, description="The Whisper model asked for by name; None = the server's")
    prompt: str | None = Field(None, description="Whisper's initial prompt (vocabulary, spelling, style)")
    temperature: float | None = Field(None, description="Sampling temperature; None or 0 = with fallback")
    segments: bool | None = Field(None, description="Keep the recognised segments and words in the result")
    stream: bool | None = Field(None, description="Publish the segments while the task runs")
    from_text: bool | None = Field(
        None, description="Translate the given subtitle text (kept with the task), not the speech"
    )
    source_subtitle_id: int | None = Field(None, description="The video's subtitle whose text is translated")
    vocabulary: list[dict[str, Any]] | None = Field(
        None, description="The terms it used, as they were when it was made ({term, translations} each)"
    )

    @property
    def audio(self) -> languages.Language | None:
        return languages.resolve(self.audio_language) if self.audio_language else None

    @property
    def subtitles(self) -> languages.Language | None:
        """The translation target; None for a transcription in the language spoken."""
        return languages.resolve(self.subtitles_language) if self.subtitles_language else None


class AITaskCreated(BaseModel):
    task_id: str


class ProcessingTime(BaseModel):
    started_at: str | None = None
    completed_at: str | None = None
    total_time_sec: float | None = None


class Subtitle(BaseModel):
    start_time: str
    end_time: str
    text: str


class ResultWord(BaseModel):
    start: float
    end: float
    word: str
    probability: float


class ResultSegment(BaseModel):
    """One recognised segment (Whisper's phrase), with its words; times in seconds."""

    id: int
    start: float
    end: float
    text: str
    language: str = Field(description="Whisper's code (ISO 639-1 where there is one)")
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 1.0
    words: list[ResultWord] = []


class TranscriptionResult(Stored):
    model_config = ConfigDict(populate_by_name=True)

    subtitles: list[Subtitle] = []
    vttContent: str = ""
    concatenated_text: str = ""
    languages: list[str] = []
    speech_detected: bool = False
    language_confidence: dict[str, float] | None = Field(
        None,
        description="Our extension: for each detected language (ISO 639-2/B), how sure language "
        "identification was of it, 0-1, weighted by speech; below 0.8 the audio alone did not settle it "
        "and a rule chose (a language already found in the file, else the more common one). Absent when "
        "the language was given.",
    )
    duration: float | None = Field(None, description="Our extension: the media's duration in seconds")
    segments: list[ResultSegment] | None = Field(
        None,
        description="Our extension, for speech requests that ask for it: the recognised segments with "
        "their words (the subtitles are built from them).",
    )


class FailureResult(Stored):
    error: str


class AITaskOut(BaseModel):
    task_id: str
    task_name: str
    status: TaskStatus
    progress: int
    processing_time: ProcessingTime
    task_data: TaskData
    result: TranscriptionResult | FailureResult | None = None


class AITaskList(BaseModel):
    count: int
    next: str | None
    previous: str | None
    results: list[AITaskOut]


class CancelResult(BaseModel):
    result: str


class LanguageSupport(BaseModel):
    supported: bool
    missing: str | None = Field(
        None, description="Our extension: what this server lacks for the pair, and the command that adds it"
    )


class TranslationBackend(BaseModel):
    name: str
    targets: list[str] = Field(description="ISO 639-2/B codes it can translate into (from some source)")


class TranslationLanguages(BaseModel):
    """Our extension (``type=translation_languages``): each configured backend and its languages."""

    backends: list[TranslationBackend]
    missing: str | None = None
