"""OpenAI's audio API: ``POST /v1/audio/transcriptions`` and ``/v1/audio/translations`` (multipart,
as OpenAI documents them), and ``GET /v1/models``, so that the ``openai`` SDKs and what is built on
them (LangChain, Open WebUI, subgen's and speaches' clients) work with ``base_url`` pointed here.

Each request is an AI task of this server (see :mod:`vodscribe.api.speech_tasks`); the answer
carries its id in ``X-Task-Id``. ``Authorization: Bearer <key>`` is the client's vodscribe key.
``stream=true`` answers server-sent events: each language run's segments as they are final
(``transcript.text.delta`` with the text, ``transcript.text.segment`` with its times), then
``transcript.text.done``. Our extension: ``target_language`` translates into any language a
backend offers (OpenAI's translations are into English only).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response, StreamingResponse

from vodscribe.api import speech_tasks
from vodscribe.api.deps import SettingsDep
from vodscribe.api.errors import ApiError
from vodscribe.api.speech_tasks import Ended
from vodscribe.api.uploaded_form import FormError, UploadedForm
from vodscribe.config import Settings
from vodscribe.db.tables import Client
from vodscribe.models import catalogue
from vodscribe.models.store import ModelStore
from vodscribe.schemas.speech_dialects import (
    OpenAIError,
    OpenAIModel,
    OpenAIModelList,
    OpenAIVerboseTranscription,
)
from vodscribe.services import speech_answers, speech_requests
from vodscribe.services.ai_tasks import QueueFull, TaskError
from vodscribe.services.speech_requests import RequestError, SpeechAsk

router = APIRouter(prefix="/v1", tags=["OpenAI audio"])

_ERRORS: dict[int | str, Any] = {code: {"model": OpenAIError} for code in (400, 401, 413, 415, 429, 500, 503)}
_ANSWERS: dict[int | str, Any] = {
    200: {
        "model": OpenAIVerboseTranscription,
        "description": "json: {text} (OpenAITranscription); verbose_json: this; text, srt, vtt: text/plain; "
        "stream=true: text/event-stream",
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    },
    **_ERRORS,
}
#: Seconds a stream may stay silent before it sends a comment line (SSE clients skip them).
KEEP_ALIVE_S = 15.0
_TYPES = {401: "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}
_CODES = {401: "invalid_api_key", 413: "file_too_large", 429: "rate_limit_exceeded"}


def error_body(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": _TYPES.get(status, "invalid_request_error"),
            "param": param,
            "code": _CODES.get(status),
        }
    }


def error(
    status: int, message: str, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = error_body(status, message, param)
    return JSONResponse(body, status, headers=headers)


def _flag(value: str | None, param: str) -> bool:
    if value is None or value.strip().lower() in ("", "false", "0"):
        return False
    if value.strip().lower() in ("true", "1"):
        return True
    raise RequestError(f"{param} must be true or false.", param)


def _ask(form: UploadedForm, translate: bool) -> tuple[SpeechAsk, str, set[str]]:
    response_format = (form.get("response_format") or "json").strip()
    if response_format not in speech_answers.OPENAI_FORMATS:
        formats = ", ".join(speech_answers.OPENAI_FORMATS)
        raise RequestError(f"response_format must be one of {formats}.", "response_format")
    granularities = set(
        form.fields.get("timestamp_granularities[]", []) + form.fields.get("timestamp_granularities", [])
    )
    if granularities - {"word", "segment"}:
        raise RequestError("timestamp_granularities[] takes word and segment.", "timestamp_granularities")
    if granularities and response_format != "verbose_json":
        raise RequestError(
            "timestamp_granularities[] needs response_format verbose_json.", "timestamp_granularities"
        )
    raw_temperature = form.get("temperature")
    try:
        temperature = float(raw_temperature) if raw_temperature not in (None, "") else None
    except ValueError:
        raise RequestError("temperature must be a number.", "temperature") from None
    ask = SpeechAsk(
        filename=form.filename or "file",
        language=None if translate else form.get("language"),
        translate=translate,
        target_language=form.get("target_language"),
        prompt=form.get("prompt"),
        temperature=temperature,
        model=form.get("model"),
        segments=True,
        stream=_flag(form.get("stream"), "stream"),
        vocabulary=form.get("vocabulary"),
        vocabulary_id=form.get("vocabulary_id"),
    )
    return ask, response_format, granularities or {"segment"}


async def _request(request: Request, settings: Settings, *, translate: bool) -> Response:
    try:
        client = await speech_tasks.client_of(request, settings)
    except ApiError as exc:
        return error(exc.status, exc.message, headers=exc.headers)
    try:
        async with speech_tasks.uploaded(request, settings, "file") as form:
            ask, response_format, granularities = _ask(form, translate)
            data = await run_in_threadpool(speech_requests.task_data, settings, ask)
            assert form.file is not None
            task_id = await speech_tasks.start(settings, client, form.file, data, ask)
    except FormError as exc:
        return error(exc.status, exc.message, exc.param)
    except RequestError as exc:
        return error(exc.status, exc.message, exc.param)
    except QueueFull as exc:
        return error(429, exc.message, headers={"Retry-After": "5"})
    except TaskError as exc:
        return error(exc.status, exc.message)
    except ClientDisconnect:
        return Response(status_code=400)  # nobody is there to read it; nothing was stored
    headers = {"X-Task-Id": task_id}
    task = "translate" if translate else "transcribe"
    if ask.stream:
        events = _events(request, settings, client, task_id)
        return StreamingResponse(
            events, media_type="text/event-stream", headers={**headers, "Cache-Control": "no-cache"}
        )
    ended = await speech_tasks.wait(request, settings, client, task_id)
    if ended is None:
        return Response(status_code=499)  # the client hung up: its task was cancelled
    if ended.result is None:
        return _failed(ended, headers)
    media_type, body = speech_answers.openai_body(
        ended.result,
        response_format,
        task=task,
        words="word" in granularities,
        segments_too="segment" in granularities,
    )
    return Response(body, 200, headers, media_type=media_type)


def _failed(ended: Ended, headers: dict[str, str]) -> JSONResponse:
    status = ended.http_status
    response = error(status, ended.error or "The task failed.", "file" if status == 400 else None)
    response.headers.update(headers)
    return response


def _event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


async def _events(request: Request, settings: Settings, client: Client, task_id: str) -> AsyncIterator[bytes]:
    sent = 0
    quiet_since = time.monotonic()
    async for ended, segments in speech_tasks.follow(request, settings, client, task_id, partial=True):
        if ended is None and len(segments) <= sent:
            if time.monotonic() - quiet_since > KEEP_ALIVE_S:  # a comment: proxies keep the connection
                quiet_since = time.monotonic()
                yield b": recognising\n\n"
            continue
        quiet_since = time.monotonic()
        if ended is not None and ended.result is not None and ended.result.segments is not None:
            segments = [s.model_dump() for s in ended.result.segments]  # the final word on them
        for seg in segments[sent:]:
            yield _event(
                {"type": "transcript.text.delta", "delta": seg["text"], "segment_id": str(seg["id"])}
            )
            yield _event(
                {
                    "type": "transcript.text.segment",
                    "id": str(seg["id"]),
                    "start": seg["start"],
                    "end": seg["end"],
                    "text": seg["text"],
                    "language": seg["language"],
                }
            )
        sent = max(sent, len(segments))
        if ended is not None:
            if ended.result is None:
                yield _event(error_body(ended.http_status, ended.error or "The task failed."))
            else:
                yield _event({"type": "transcript.text.done", "text": speech_answers.text(ended.result)})
            return


@router.post(
    "/audio/transcriptions",
    responses=_ANSWERS,
    openapi_extra={"requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object"}}}}},
)
async def transcriptions(request: Request, settings: SettingsDep) -> Response:
    """Transcribe the ``file`` part: ``model``, ``language`` (ISO 639-1), ``prompt``,
    ``response_format`` (json, text, srt, verbose_json, vtt), ``temperature``,
    ``timestamp_granularities[]`` (word, segment), ``stream``; ours: ``target_language``,
    ``vocabulary`` (a JSON array of terms, or terms separated by commas), ``vocabulary_id``."""
    return await _request(request, settings, translate=False)


@router.post(
    "/audio/translations",
    responses=_ANSWERS,
    openapi_extra={"requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object"}}}}},
)
async def translations(request: Request, settings: SettingsDep) -> Response:
    """Translate the ``file`` part's speech into English (``target_language``, ours: any language a
    translation backend here offers); the same parameters as transcriptions but ``language``."""
    return await _request(request, settings, translate=True)


@router.get("/models", response_model=OpenAIModelList, responses=_ERRORS)
async def models(request: Request, settings: SettingsDep) -> Any:
    """The speech models a request may name: ``whisper-1`` (the server's), and each pulled one."""
    try:
        await speech_tasks.client_of(request, settings)
    except ApiError as exc:
        return error(exc.status, exc.message, headers=exc.headers)
    store = ModelStore(settings.models_path)
    names = ["whisper-1"] + [
        m.name for m in catalogue.CATALOGUE if m.kind == "asr" and store.installed(m.name) is not None
    ]
    return OpenAIModelList(data=[OpenAIModel(id=name) for name in dict.fromkeys(names)])
