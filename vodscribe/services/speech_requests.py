"""Speech requests: the OpenAI audio API's and whisper-asr-webservice's, run as AI tasks.

A request's upload becomes an ordinary transcription task (listed, counted in the client's queue,
cancellable, recovered when a worker dies) on the same recogniser, reading rules, code-switching and
translation backends as every other; what differs is only how its result is written out
(:mod:`vodscribe.services.speech_answers`). Here: what a request may ask, checked before anything is
stored, and the task made from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from vodscribe import languages
from vodscribe.config import Settings
from vodscribe.db.tables import AITask, Client
from vodscribe.models import catalogue
from vodscribe.models.resolve import ref
from vodscribe.models.store import ModelStore
from vodscribe.schemas.ai_tasks import TaskData
from vodscribe.schemas.vocabularies import TermItem, Terms
from vodscribe.services import vocabularies
from vodscribe.services.ai_tasks import TaskError, create_from_upload

#: Model names every client sends for "the server's model": OpenAI's, and the bundled model's own.
SERVER_MODEL = frozenset({"", "whisper-1", "default", catalogue.BUNDLED})
BUNDLED_NAMES = frozenset({"base", "whisper-base", "faster-whisper-base", "systran/faster-whisper-base"})


_TERMS: TypeAdapter[list[TermItem]] = TypeAdapter(Terms)


class RequestError(TaskError):
    """A request parameter that cannot be taken; ``param`` names it (OpenAI's error shape has it)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message, status)
        self.param = param


@dataclass(frozen=True, slots=True)
class SpeechAsk:
    """What one speech request asks, as sent (checked by :func:`task_data`)."""

    filename: str
    language: str | None = None
    translate: bool = False
    """Into English (OpenAI's translations, ``/asr?task=translate``), unless ``target_language``."""
    target_language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    model: str | None = None
    segments: bool = True
    stream: bool = False
    vocabulary: str | None = None
    """Our extension: terms as a JSON array (strings or ``{"term", "translations"}``) or separated
    by commas."""
    vocabulary_id: str | None = None


def model_name(settings: Settings, asked: str | None) -> str | None:
    """The model a request names, as the worker loads it: None for the server's own (``whisper-1``,
    its configured name, the bundled model's names), else a catalogue speech model pulled here.
    Anything else is a 400 that says what there is."""
    wanted = (asked or "").strip()
    low = wanted.lower()
    configured = ref("asr", settings.asr_model)
    own = {settings.asr_model.strip().lower()}
    if configured.model is not None:
        own |= {configured.model.name.lower(), *configured.model.aliases}
    if configured.bundled:
        own |= BUNDLED_NAMES
    if low in SERVER_MODEL or low in own:
        return None
    store = ModelStore(settings.models_path)
    try:
        model = catalogue.find(wanted, "asr")
    except catalogue.UnknownModelError:
        model = None
    if model is not None and store.installed(model.name) is not None:
        return model.name
    pulled = [m.name for m in catalogue.CATALOGUE if m.kind == "asr" and store.installed(m.name) is not None]
    offered = ", ".join(["whisper-1", settings.asr_model, *pulled])
    if model is not None:
        raise RequestError(
            f"The model {wanted!r} is not on this server (an operator adds it with `vodscribe models pull "
            f"{model.name}`). Models here: {offered}.",
            "model",
        )
    raise RequestError(f"The model {wanted!r} does not exist. Models here: {offered}.", "model")


def _language(value: str | None, param: str) -> languages.Language | None:
    if value is None or not value.strip():
        return None
    try:
        return languages.resolve(value.strip())
    except languages.UnknownLanguageError as exc:
        raise RequestError(str(exc), param) from exc


def task_data(settings: Settings, ask: SpeechAsk) -> TaskData:
    """The task's data for ``ask``, every parameter checked (400 with the parameter's name)."""
    spoken = _language(ask.language, "language")
    target = _language(ask.target_language, "target_language")
    if target is None and ask.translate:
        target = languages.ENGLISH
    if ask.temperature is not None and not 0.0 <= ask.temperature <= 1.0:
        raise RequestError("temperature must be between 0 and 1.", "temperature")
    if ask.prompt is not None and len(ask.prompt) > 2000:
        raise RequestError("prompt is longer than 2000 characters.", "prompt")
    return TaskData(
        url="upload:" + (ask.filename.replace("\n", " ")[:200] or "file"),
        audio_language=spoken.b if spoken else None,
        subtitles_language=target.b if target else None,
        model=model_name(settings, ask.model),
        prompt=ask.prompt or None,
        temperature=ask.temperature or None,
        segments=True if ask.segments else None,
        stream=True if ask.stream else None,
    )


def terms(ask: SpeechAsk) -> tuple[list[TermItem] | None, int | None]:
    """The request's own terms and saved vocabulary, checked as every vocabulary is (400 naming the
    parameter)."""
    given: list[TermItem] | None = None
    if ask.vocabulary and ask.vocabulary.strip():
        text = ask.vocabulary.strip()
        try:
            raw = json.loads(text) if text.startswith("[") else [t for t in text.split(",") if t.strip()]
            given = _TERMS.validate_python(raw)
        except (ValueError, ValidationError) as exc:
            raise RequestError(f"vocabulary is not a list of terms: {exc}", "vocabulary") from None
    saved = None
    if ask.vocabulary_id and ask.vocabulary_id.strip():
        try:
            saved = int(ask.vocabulary_id)
        except ValueError:
            raise RequestError("vocabulary_id must be a number.", "vocabulary_id") from None
    return given, saved


def create(
    session: Session,
    settings: Settings,
    client: Client,
    path: Path,
    data: TaskData,
    ask: SpeechAsk | None = None,
) -> AITask:
    """The task of an uploaded file (see :func:`vodscribe.services.ai_tasks.create_from_upload`),
    with the vocabulary ``ask`` names (the saved one must be the client's)."""
    if ask is not None:
        given, saved = terms(ask)
        try:
            chosen = vocabularies.for_request(session, client, given, saved)
        except vocabularies.VocabularyError as exc:
            param = "vocabulary_id" if exc.status == 404 else "vocabulary"
            raise RequestError(exc.message, param) from exc
        data = data.model_copy(update={"vocabulary": chosen})
    return create_from_upload(session, settings, client, path, data)
