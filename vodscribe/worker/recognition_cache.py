"""Recognise a file once: what recognition found is kept by the file's SHA-256, the ASR model and
the language hint, and a later task on the same bytes (a video's translations, a client asking again
for another subtitle language) starts from it. Records older than ``RECOGNITION_KEEP_S`` are pruned
by the reaper; a record is a few kilobytes per minute of speech."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from vodscribe.config import Settings
from vodscribe.db.session import changed, session_scope
from vodscribe.db.tables import Recognition, utcnow
from vodscribe.engines.whisper import Decoding
from vodscribe.models.resolve import identity, ref
from vodscribe.models.store import ModelStore
from vodscribe.speech.stored_recognition import Recognized

log = logging.getLogger(__name__)

#: A record larger than this (JSON characters, about 15 hours of dense speech) is not kept.
MAX_RECORD_CHARS = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Key:
    media_sha256: str
    asr_model: str
    language_hint: str


def variant(asked: Decoding, vocabulary: list[Any] | None) -> str:
    """What besides the model changes the words a task recognises, as a short digest ("" for none:
    the key of every task before these existed)."""
    if asked == Decoding() and not vocabulary:
        return ""
    given = json.dumps([asdict(asked), vocabulary], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(given.encode()).hexdigest()[:16]


def key_for(settings: Settings, path: Path, language_hint: str | None, variant: str = "") -> Key:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    # What changes the words: the model and how it decodes.
    # A named model is keyed with the commit it was pulled at: a re-pull at a new one starts afresh.
    asr = ref("asr", settings.asr_model)
    model = f"{identity(asr, ModelStore(settings.models_path))}|beam={settings.asr.beam_size}"
    if variant:
        model += f"|asked={variant}"
    return Key(digest.hexdigest(), model, language_hint or "")


def find(settings: Settings, key: Key) -> Recognized | None:
    """The kept recognition for ``key``; for a language hint without one, a recognition made without
    a hint that heard only that language (so the same runs and words): Bazarr asks
    ``/detect-language`` first, then sends the same bytes with the language it was told."""
    found = _find(settings, key)
    if found is None and key.language_hint:
        unhinted = _find(settings, Key(key.media_sha256, key.asr_model, ""))
        if unhinted is not None and {run.language for run, _ in unhinted.runs} == {key.language_hint}:
            return unhinted
    return found


def _find(settings: Settings, key: Key) -> Recognized | None:
    with session_scope(settings.db_url) as s:
        row = s.scalars(
            select(Recognition)
            .where(
                Recognition.media_sha256 == key.media_sha256,
                Recognition.asr_model == key.asr_model,
                Recognition.language_hint == key.language_hint,
            )
            .order_by(Recognition.id.desc())
        ).first()
        return Recognized.from_json(row.data) if row is not None else None


def keep(settings: Settings, key: Key, recognized: Recognized) -> None:
    data = recognized.to_json()
    if len(str(data)) > MAX_RECORD_CHARS:
        return
    with session_scope(settings.db_url) as s:
        s.add(
            Recognition(
                media_sha256=key.media_sha256,
                asr_model=key.asr_model,
                language_hint=key.language_hint,
                data=data,
            )
        )


def prune(settings: Settings) -> int:
    """Delete records older than ``recognition_keep_s``; returns how many."""
    cutoff = utcnow() - timedelta(seconds=settings.recognition_keep_s)
    with session_scope(settings.db_url) as s:
        return changed(s, delete(Recognition).where(Recognition.created_at < cutoff))
