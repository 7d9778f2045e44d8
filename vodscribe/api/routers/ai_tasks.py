"""``/streaming/ai/...``: create, read, list and cancel AI tasks; language support info."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session

from vodscribe import languages
from vodscribe.api.deps import ClientDep, Read, SessionDep, SettingsDep
from vodscribe.api.errors import ApiError
from vodscribe.api.params import Page, QueryText
from vodscribe.api.responses import model_response
from vodscribe.db.tables import Client
from vodscribe.schemas.ai_tasks import (
    AITaskCreate,
    AITaskCreated,
    AITaskList,
    AITaskOut,
    CancelResult,
    LanguageSupport,
    TranslationBackend,
    TranslationLanguages,
)
from vodscribe.schemas.errors import StatusErrorBody, responses
from vodscribe.services import ai_tasks, translation_backends
from vodscribe.services.ai_tasks import ListQuery, TaskError
from vodscribe.services.translation_backends import can_translate, translators_for

router = APIRouter(prefix="/streaming/ai", tags=["AI tasks"])
#: Bad input answers 400 ``{"error"}`` here (Gcore's ai_badrequest), never FastAPI's 422.
ERRORS = responses(400, 401, 429, 503)


def _raise(exc: TaskError) -> ApiError:
    return ApiError(exc.status, exc.message)


CREATE_ERRORS = {**ERRORS, **responses(422)}  # 422: content-moderation is a disabled feature


@router.post(
    "/tasks", status_code=status.HTTP_201_CREATED, response_model=AITaskCreated, responses=CREATE_ERRORS
)
def create_task(
    body: AITaskCreate, request: Request, client: ClientDep, session: SessionDep, settings: SettingsDep
) -> Any:
    """Create a transcription task for the media file at ``url``."""
    if body.task_name != "transcription":
        raise ApiError(422, "Feature is disabled: content-moderation tasks are not available on this server.")
    try:
        bases = (settings.base_url, str(request.base_url))
        task = ai_tasks.create_transcription(session, settings, client, body, own_bases=bases)
    except TaskError as exc:
        raise _raise(exc) from exc
    return {"task_id": task.id}


@router.post(
    "/transcribe", status_code=status.HTTP_201_CREATED, response_model=AITaskCreated, responses=CREATE_ERRORS
)
def create_task_legacy(
    body: AITaskCreate, request: Request, client: ClientDep, session: SessionDep, settings: SettingsDep
) -> Any:
    """Legacy alias (Gcore docs of 2024) of ``POST /streaming/ai/tasks`` for transcription."""
    return create_task(body, request, client, session, settings)


@router.get(
    "/tasks",
    response_model=AITaskList,
    response_model_exclude_unset=True,
    responses=ERRORS,
)
async def list_tasks(
    read: Read,
    page: Page = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    task_id: QueryText = None,
    task_name: QueryText = None,
    status: QueryText = None,
    date_created: QueryText = None,
    ordering: QueryText = None,
    search: QueryText = None,
) -> Response:
    """List this client's tasks, newest first, with Gcore's filters and page-number pagination."""
    q = ListQuery(page, limit, task_id, task_name, status, date_created, ordering, search)

    def work(session: Session, client: Client) -> Response:
        try:
            total, tasks = ai_tasks.list_tasks(session, client, q)
        except TaskError as exc:
            raise _raise(exc) from exc
        has_next = page * limit < total
        listed = AITaskList(
            count=total,
            next=f"page={page + 1}" if has_next else None,
            previous=f"page={page - 1}" if page > 1 else None,
            results=[ai_tasks.task_out(t, with_result=False) for t in tasks],
        )
        return model_response(listed)

    return await read(work)


@router.get(
    "/tasks/{task_id}",
    response_model=AITaskOut,
    response_model_exclude_unset=True,
    responses={**ERRORS, **responses(404, model=StatusErrorBody)},
)
@router.get("/results/{task_id}", response_model=AITaskOut, include_in_schema=False)
async def get_task(task_id: str, read: Read) -> Response:
    """Status, progress and (once finished) the result of one task."""

    def work(session: Session, client: Client) -> Response:
        task = ai_tasks.get_task(session, client, task_id)
        if task is None:
            raise ApiError(404, "Task not found", with_status=True)
        # Unset fields left out on both paths (the legacy one declares no response filter).
        return model_response(ai_tasks.task_out(task, with_result=True))

    return await read(work)


@router.post(
    "/tasks/{task_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CancelResult,
    responses={**ERRORS, **responses(404, 412)},
)
def cancel_task(task_id: str, client: ClientDep, session: SessionDep, settings: SettingsDep) -> Any:
    """Stop a task that has not finished yet; it moves to REVOKED."""
    try:
        ai_tasks.cancel_task(session, settings, client, task_id)
    except TaskError as exc:
        raise _raise(exc) from exc
    return {"result": "Task has been cancelled successfully."}


@router.get(
    "/info",
    response_model=LanguageSupport | TranslationLanguages,
    response_model_exclude_none=True,
    responses=ERRORS,
)
def ai_info(
    client: ClientDep,
    settings: SettingsDep,
    type: QueryText = None,
    audio_language: QueryText = None,
    subtitles_language: QueryText = None,
) -> Any:
    """``type=language_support``: can this server transcribe ``audio_language`` (into
    ``subtitles_language``)? The answer follows the translation backends configured here, and says
    what is missing when a pair is not on offer. ``type=translation_languages`` (our extension):
    each configured translation backend with the languages it translates into."""
    if type == "translation_languages":
        backends = [
            TranslationBackend(name=b.name, targets=sorted(b.targets())) for b in translators_for(settings)
        ]
        return TranslationLanguages(backends=backends, missing=translation_backends.missing(settings))
    if type != "language_support":
        raise ApiError(400, "Invalid config type")
    if not audio_language:
        raise ApiError(400, '"audio_language" is not specified')
    supported = languages.language_supported(
        audio_language,
        subtitles_language,
        can_translate=lambda source, target: can_translate(settings, source, target),
    )
    hint = None if supported else translation_backends.missing(settings)  # only a refusal explains
    return LanguageSupport(supported=supported, missing=hint)
