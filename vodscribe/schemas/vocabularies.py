"""Vocabularies (our extension): terms a client wants recognised and translated the way it writes
them, per request (``vocabulary`` on AI tasks, videos and subtitle requests) or saved
(``/streaming/ai/vocabularies``) and named by ``vocabulary_id``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from vodscribe.schemas.text import LanguageCode, TermText, VocabularyName

#: Terms a request or a saved vocabulary may hold (Whisper's hotwords take about 220 tokens anyway;
#: the rest are still put right after recognition and kept in translations).
MAX_TERMS = 500
#: Languages one term may have renderings in.
MAX_RENDERINGS = 50


class TermIn(BaseModel):
    """A term as the team writes it, and how to write it in other languages (ISO 639-2/B, T, 639-1
    codes or names; stored as B codes): ``{"term": "checkout", "translations": {"ger": "Kasse"}}``.
    A language without a rendering keeps the term as written."""

    model_config = ConfigDict(extra="forbid")

    term: TermText
    translations: dict[LanguageCode, TermText] | None = Field(None, max_length=MAX_RENDERINGS)


#: A term: its text alone, or with renderings.
TermItem = TermText | TermIn
Terms = list[TermItem]


class TermOut(BaseModel):
    term: str
    translations: dict[str, str] = {}


class VocabularyIn(BaseModel):
    """``POST /streaming/ai/vocabularies``."""

    model_config = ConfigDict(extra="forbid")

    name: VocabularyName
    terms: Terms = Field(min_length=1, max_length=MAX_TERMS)


class VocabularyPatch(BaseModel):
    """``PATCH /streaming/ai/vocabularies/{id}``: what is given replaces what was there."""

    model_config = ConfigDict(extra="forbid")

    name: VocabularyName | None = None
    terms: Terms | None = Field(None, min_length=1, max_length=MAX_TERMS)


class VocabularyOut(BaseModel):
    id: int
    name: str
    terms: list[TermOut]
    created_at: datetime
    updated_at: datetime


class VocabularyList(BaseModel):
    count: int
    next: str | None
    previous: str | None
    results: list[VocabularyOut]
