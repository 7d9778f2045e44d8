"""whisper-asr-webservice's API: ``POST /asr`` and ``POST /detect-language``, the contract of Bazarr's
"whisperai" subtitle provider and of subgen's Bazarr route.

Bazarr sends the audio track it extracted as raw 16 kHz mono s16le with ``encode=false``, asks
``output=srt`` and gives ``task`` and ``language`` (Whisper's codes), all in the query string, the
audio as the ``audio_file`` part. It sends no key (its only setting is the endpoint URL), so the key
may come as the URL's credentials (``http://vodscribe:KEY@host:8000``, which its HTTP client sends as
``Authorization: Basic``); keyless requests only where ``anonymous_speech_requests`` allows them.

Each request is an AI task of this server (see :mod:`vodscribe.api.speech_tasks`). Unlike the
original, ``/detect-language`` answers from the whole file's speech, not its first 30 s, and the
subtitle outputs are this server's readable cues. Speech is always cut by VAD here, so
``vad_filter`` is accepted and changes nothing; word times are always recognised, and
``word_timestamps`` puts them in the ``json`` output.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from vodscribe.api import speech_tasks
from vodscribe.api.deps import SettingsDep
from vodscribe.api.errors import ApiError
from vodscribe.api.uploaded_form import FormError
from vodscribe.config import Settings
from vodscribe.schemas.speech_dialects import DetailError, DetectedLanguage
from vodscribe.services import speech_answers, speech_requests
from vodscribe.services.ai_tasks import QueueFull, TaskError
from vodscribe.services.speech_requests import SpeechAsk

router = APIRouter(tags=["whisper-asr-webservice"])

_ERRORS: dict[int | str, Any] = {
    code: {"model": DetailError} for code in (400, 401, 409, 413, 415, 429, 500, 503)
}
_MULTIPART = {"requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object"}}}}}
ENGINE = "vodscribe"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status, headers=headers)


async def _run(
    request: Request, settings: Settings, ask: SpeechAsk, encode: bool
) -> tuple[Response | None, Any]:
    """The request's task, run to its end: (an error answer, None) or (None, (ended, filename))."""
    try:
        client = await speech_tasks.client_of(request, settings)
    except ApiError as exc:
        return _error(exc.status, exc.message, exc.headers), None
    try:
        async with speech_tasks.uploaded(request, settings, "audio_file") as form:
            assert form.file is not None
            path = form.file if encode else await run_in_threadpool(speech_tasks.wav_from_pcm, form.file)
            ask = replace(ask, filename=form.filename or "audio_file")
            data = await run_in_threadpool(speech_requests.task_data, settings, ask)
            task_id = await speech_tasks.start(settings, client, path, data, ask)
    except FormError as exc:
        return _error(exc.status, exc.message), None
    except QueueFull as exc:
        return _error(429, exc.message, {"Retry-After": "5"}), None
    except TaskError as exc:
        return _error(exc.status, exc.message), None
    except ClientDisconnect:
        return Response(status_code=400), None
    ended = await speech_tasks.wait(request, settings, client, task_id)
    if ended is None:
        return Response(status_code=499), None
    if ended.result is None:
        return _error(ended.http_status, ended.error or "The task failed.", {"X-Task-Id": task_id}), None
    return None, (ended, ask.filename)


@router.post(
    "/asr",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **_ERRORS},
    openapi_extra=_MULTIPART,
)
async def asr(
    request: Request,
    settings: SettingsDep,
    encode: Annotated[bool, Query(description="false: the file is raw 16 kHz mono s16le PCM")] = True,
    task: Annotated[Literal["transcribe", "translate"], Query()] = "transcribe",
    language: Annotated[
        str | None, Query(max_length=32, description="Whisper's code; none: identified")
    ] = None,
    initial_prompt: Annotated[str | None, Query(max_length=2000)] = None,
    vad_filter: Annotated[bool, Query(description="Accepted; speech is always cut by VAD here")] = False,
    word_timestamps: Annotated[bool, Query(description="Words with times in the json output")] = False,
    output: Annotated[Literal["txt", "vtt", "srt", "tsv", "json"], Query()] = "txt",
    target_language: Annotated[
        str | None, Query(max_length=32, description="Ours: translate into it")
    ] = None,
    vocabulary: Annotated[
        str | None, Query(max_length=8192, description="Ours: terms separated by commas, or a JSON array")
    ] = None,
    vocabulary_id: Annotated[str | None, Query(max_length=16, description="Ours: a saved vocabulary")] = None,
) -> Response:
    """Transcribe (or translate into English) the ``audio_file`` part; the answer is the ``output``
    format as text, as whisper-asr-webservice answers."""
    ask = SpeechAsk(
        filename="audio_file",
        language=language,
        translate=task == "translate",
        target_language=target_language,
        prompt=initial_prompt,
        vocabulary=vocabulary,
        vocabulary_id=vocabulary_id,
    )
    failed, done = await _run(request, settings, ask, encode)
    if failed is not None:
        return failed
    ended, filename = done
    body = speech_answers.asr_body(ended.result, output, word_timestamps=word_timestamps)
    headers = {
        "Asr-Engine": ENGINE,
        "Content-Disposition": f'attachment; filename="{quote(filename)}.{output}"',
        "X-Task-Id": ended.task_id,
    }
    return Response(body, 200, headers, media_type="text/plain; charset=utf-8")


@router.post("/detect-language", response_model=DetectedLanguage, responses=_ERRORS, openapi_extra=_MULTIPART)
async def detect_language(
    request: Request,
    settings: SettingsDep,
    encode: Annotated[bool, Query(description="false: the file is raw 16 kHz mono s16le PCM")] = True,
) -> Any:
    """The language most of the ``audio_file`` part's speech is in, from the whole file."""
    failed, done = await _run(request, settings, SpeechAsk(filename="audio_file"), encode)
    if failed is not None:
        return failed
    ended, _ = done
    code, name, confidence = speech_answers.detected(ended.result)
    return JSONResponse(
        DetectedLanguage(detected_language=name, language_code=code, confidence=confidence).model_dump(),
        headers={"X-Task-Id": ended.task_id},
    )
