"""Answers of the speech dialects, for their routes' OpenAPI schemas and their errors: OpenAI's audio
API (``/v1/audio/...``) and whisper-asr-webservice's (``/asr``, ``/detect-language``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    """``{"error": {"message", "type", "param", "code"}}``, as OpenAI answers errors."""

    error: OpenAIErrorDetail


class OpenAITranscription(BaseModel):
    """``response_format=json`` (the default)."""

    text: str


class OpenAIWord(BaseModel):
    word: str
    start: float
    end: float


class OpenAISegment(BaseModel):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class OpenAIVerboseTranscription(BaseModel):
    """``response_format=verbose_json``."""

    task: str
    language: str = Field(description="The language's name, as Whisper writes it (english)")
    duration: float
    text: str
    segments: list[OpenAISegment] | None = None
    words: list[OpenAIWord] | None = None


class OpenAIModel(BaseModel):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = "vodscribe"


class OpenAIModelList(BaseModel):
    object: str = "list"
    data: list[OpenAIModel]


class DetectedLanguage(BaseModel):
    """``POST /detect-language``: the language most of the file's speech is in."""

    detected_language: str = Field(description="Its name as Whisper writes it (english)")
    language_code: str = Field(description="Whisper's code (en)")
    confidence: float


class DetailError(BaseModel):
    """``{"detail": "..."}``, as whisper-asr-webservice (FastAPI) answers errors."""

    detail: str
